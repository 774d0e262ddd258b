# The demo recipe (`make demo`, tools/demo.py): cluster contrast trained
# from scratch (random init, no weights file) on the synthetic data set,
# generated under data_root on first use, on a 2-core CPU in minutes.
#   python tools/train.py configs/demo/cluster_contrast_demo_synthetic.py
_base_ = [
    '../_base_/models/cluster_contrast_r50.py',
    '../_base_/default_runtime.py',
]

# ResNet-18 with IBN-a blocks (instance norm in the shallow layers, which
# removes per-image contrast and colour statistics, much of what tells one
# camera from another here).
model = dict(
    channels_last=True,
    backbone=dict(type='ResNetIBN', depth=18, last_stride=1, init_cfg=None),
    neck=dict(in_channels=512, pooling='avg'),
    head=dict(memory=dict(feat_dim=512, temperature=0.05, momentum=0.2)))

custom_hooks = [
    dict(
        type='ReClusterHook',
        label_generator=dict(
            type='DBSCANLabelGenerator', eps=0.5, min_samples=4, k1=20,
            k2=6)),
    dict(type='EvaluateBeforeTrainHook'),
]

dataset_type = 'SyntheticReIDDataset'
data_root = 'data/synthetic_reid'
# The generator's defaults, spelled out: 200 train ids, 100 test ids,
# 4 cameras, 4 images per id and camera, 128x64.
generator_cfg = dict(
    num_train_ids=200,
    num_test_ids=100,
    num_cameras=4,
    images_per_id_per_camera=4,
    height=128,
    width=64,
    seed=0)

# Images are resized to 64x32, then the central 60x12 strip is kept: the
# synthetic persons stand in the middle of the frame, and the sides hold
# mostly the camera's background, which would otherwise pull the clusters
# towards cameras. Random colour casts, brightness and greyscale during
# training do the same for the cameras' lighting.
crop_size = (12, 60)  # (W, H)
train_pipeline = [
    dict(type='LoadReIDImage'),
    dict(
        type='Resize',
        scale=(32, 64),  # (W, H)
        keep_ratio=False,
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomPadCrop', padding=4),
    dict(type='CenterCrop', crop_size=crop_size),
    dict(
        type='RandomColorCast',
        gain_range=(0.7, 1.3),
        brightness_range=(0.6, 1.45)),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True),
    dict(type='RandomErasing', prob=0.5),
    dict(type='PackReIDInputs'),
]
test_pipeline = [
    dict(type='LoadReIDImage'),
    dict(
        type='Resize',
        scale=(32, 64),
        keep_ratio=False,
        interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=crop_size),
    dict(type='PackReIDInputs'),
]

train_dataloader = dict(
    batch_size=64,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(
        type='IdentitySampler', num_instances=4, batch_size=64,
        num_iters=50),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        generator_cfg=generator_cfg,
        pipeline=train_pipeline))
cluster_dataloader = dict(
    batch_size=128,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        test_mode=True,
        generator_cfg=generator_cfg,
        pipeline=test_pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        generator_cfg=generator_cfg,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='ReIDMetric')
test_evaluator = val_evaluator

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-3, weight_decay=5e-4))
param_scheduler = [
    dict(type='StepLR', by_epoch=True, step_size=12, gamma=0.1)
]
train_cfg = dict(type='ReIDTrainLoop', max_epochs=16, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=4, max_keep_ckpts=1, save_best=None))
