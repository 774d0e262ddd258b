# The CPU recipe with OpenCV's bicubic resize, which does not antialias
# when it scales down (CUHK03's images are about 2.3x the 128x64 input),
# instead of PIL's, as this project did before 2026-12-07. One difference
# at a time: python tools/run_ablation.py --protocol cuhk03_parity
# (variant ours_cv2).
_base_ = ['../cluster_contrast_mobilenetv2_cpu_cuhk03.py']

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
    dict(
        type='RandomErasing',
        prob=0.5,
        fill=(126.82, 142.33, 152.0),  # NORMALISED_MEAN_FILL_BGR
        aspect_sampling='uniform'),
    dict(type='PackReIDInputs'),
]
test_pipeline = [dict(type='LoadReIDImage'), resize,
                 dict(type='PackReIDInputs')]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
cluster_dataloader = dict(dataset=dict(pipeline=test_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
