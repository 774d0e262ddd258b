# What every re-ID data set config shares: the 256x128 pipelines, the
# P x K training loader, the re-clustering loader and the evaluation loader.
# Not a config by itself: the data set configs beside it inherit it and set
# the dataset type and data_root of the three loaders.

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
        split='train',
        pipeline=train_pipeline))

# The whole train split with the test pipeline, read in a fixed order by the
# re-clustering hook to extract the features it clusters.
cluster_dataloader = dict(
    batch_size=256,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        split='train',
        test_mode=True,
        pipeline=test_pipeline))

# 'test' = query then gallery; ReIDMetric splits them by the is_query flag.
val_dataloader = dict(
    batch_size=256,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        split='test',
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='ReIDMetric')
test_evaluator = val_evaluator
