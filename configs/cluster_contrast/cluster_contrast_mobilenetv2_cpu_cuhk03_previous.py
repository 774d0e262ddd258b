# The CPU recipe as it was until 2026-12-07: OpenCV's bicubic resize (no
# antialiasing), random erasing filled with the ImageNet mean colour with a
# log-uniform aspect, and a round-robin over a pseudo identity's cameras
# for its instances. The RCL ablation (docs/ablation/cuhk03_imagenet) and
# the semi-supervised protocol (docs/ablation/cuhk03_semi) were measured
# with it, so their configs inherit it; variant ours_previous of the
# cuhk03_parity protocol.
_base_ = ['./cluster_contrast_mobilenetv2_cpu_cuhk03.py']

resize = dict(
    type='Resize',
    scale=(64, 128),  # (W, H)
    keep_ratio=False,
    interpolation='bicubic',
    backend='cv2')
train_pipeline = [
    dict(type='LoadReIDImage'),
    resize,
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomPadCrop', padding=10),
    dict(type='RandomErasing', prob=0.5),
    dict(type='PackReIDInputs'),
]
test_pipeline = [dict(type='LoadReIDImage'), resize,
                 dict(type='PackReIDInputs')]
train_dataloader = dict(
    sampler=dict(instance_rule='round_robin'),
    dataset=dict(pipeline=train_pipeline))
cluster_dataloader = dict(dataset=dict(pipeline=test_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
