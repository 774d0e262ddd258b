# The CPU recipe with random erasing filled with the ImageNet mean colour
# (0 once normalised) and a log-uniform aspect (half the boxes tall), as
# this project did before 2026-12-07, instead of the published fill (the
# ImageNet mean written into the normalised image, a light grey) and
# uniform aspect. Variant ours_mean_erasing of the cuhk03_parity protocol.
_base_ = ['../cluster_contrast_mobilenetv2_cpu_cuhk03.py']

train_pipeline = [
    dict(type='LoadReIDImage'),
    {{_base_.resize}},
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomPadCrop', padding=10),
    dict(type='RandomErasing', prob=0.5),
    dict(type='PackReIDInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
