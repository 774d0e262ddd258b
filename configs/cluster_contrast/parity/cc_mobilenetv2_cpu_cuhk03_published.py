# The CPU recipe with all three behaviours of the published code that
# differ from this project's defaults: PIL's antialiased resize, its random
# erasing and its anchor + other-camera instances. Variant ours_published
# of the cuhk03_parity protocol.
_base_ = ['./cc_mobilenetv2_cpu_cuhk03_pillow.py']

train_pipeline = [
    dict(type='LoadReIDImage'),
    {{_base_.resize}},
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomPadCrop', padding=10),
    dict(
        type='RandomErasing',
        prob=0.5,
        fill=(126.82, 142.33, 152.0),  # NORMALISED_MEAN_FILL_BGR
        aspect_sampling='uniform'),
    dict(type='PackReIDInputs'),
]
train_dataloader = dict(
    sampler=dict(instance_rule='anchor_cross_camera'),
    dataset=dict(pipeline=train_pipeline))
