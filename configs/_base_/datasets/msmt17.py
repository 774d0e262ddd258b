# MSMT17_V1 as released: train/, test/ and list_{train,val,query,gallery}.txt
# under data_root (symlink it to data/msmt17). Set layout='v2' for
# MSMT17_V2 (mask_train_v2/, mask_test_v2/) or layout='market' for a copy
# re-packed in the Market-1501 layout. The train split is list_train plus
# list_val; train_with_val=False keeps list_train only.
dataset_type = 'MSMT17Dataset'
data_root = 'data/msmt17/'

train_pipeline = [
    dict(type='LoadReIDImage'),
    dict(
        type='Resize',
        scale=(128, 256),  # (W, H)
        keep_ratio=False,
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomPadCrop', padding=10),
    dict(type='RandomErasing', prob=0.5),
    dict(type='PackReIDInputs'),
]
test_pipeline = [
    dict(type='LoadReIDImage'),
    dict(
        type='Resize',
        scale=(128, 256),
        keep_ratio=False,
        interpolation='bicubic'),
    dict(type='PackReIDInputs'),
]

# P x K identity batches (P = 256 / 16 pseudo identities): the sampler's
# batch_size must equal the loader's, and num_iters fixes the epoch length.
train_dataloader = dict(
    batch_size=256,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(
        type='IdentitySampler',
        num_instances=16,
        batch_size=256,
        num_iters=200),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline,
        layout='v1',
        train_with_val=True))

# The whole train split with the test pipeline, read in a fixed order by the
# re-clustering hook to extract the features it clusters.
cluster_dataloader = dict(
    batch_size=256,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        test_mode=True,
        pipeline=test_pipeline,
        layout='v1',
        train_with_val=True))

# 'test' = query then gallery; ReIDMetric splits them by the is_query flag.
val_dataloader = dict(
    batch_size=256,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        pipeline=test_pipeline,
        layout='v1',
        train_with_val=True))
test_dataloader = val_dataloader

val_evaluator = dict(type='ReIDMetric')
test_evaluator = val_evaluator
