# The CPU recipe with the published code's random erasing: the fill is the
# ImageNet mean written into the normalised image (a light grey,
# NORMALISED_MEAN_FILL_BGR) and the box's aspect ratio is uniform in
# [0.3, 3.33] (mostly tall boxes), instead of the mean colour and a
# log-uniform aspect. Variant ours_erasing of the cuhk03_parity protocol.
_base_ = ['../cluster_contrast_mobilenetv2_cpu_cuhk03.py']

train_pipeline = [
    dict(type='LoadReIDImage'),
    dict(
        type='Resize',
        scale=(64, 128),  # (W, H)
        keep_ratio=False,
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomPadCrop', padding=10),
    dict(
        type='RandomErasing',
        prob=0.5,
        fill=(126.82, 142.33, 152.0),  # NORMALISED_MEAN_FILL_BGR
        aspect_sampling='uniform'),
    dict(type='PackReIDInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
