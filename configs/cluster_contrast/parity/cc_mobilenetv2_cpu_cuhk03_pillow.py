# The CPU recipe with the published code's resize: PIL bicubic, which
# antialiases when it scales down (CUHK03's images are about 2.3x the
# 128x64 input), instead of OpenCV's bicubic, which does not.
# One difference at a time: python tools/run_ablation.py --protocol
# cuhk03_parity (variant ours_pillow).
_base_ = ['../cluster_contrast_mobilenetv2_cpu_cuhk03.py']

resize = dict(
    type='Resize',
    scale=(64, 128),  # (W, H)
    keep_ratio=False,
    interpolation='bicubic',
    backend='pillow')
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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
cluster_dataloader = dict(dataset=dict(pipeline=test_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
