# What every re-ID data set config shares: the 256x128 pipelines, the
# P x K training loader, the re-clustering loader and the evaluation loader.
# Not a config by itself: the data set configs beside it inherit it and set
# the dataset type and data_root of the three loaders.
#
# The images and batches are those of the published cluster-contrast code:
# PIL's antialiased bicubic resize, random erasing filled with the
# normalised ImageNet mean (NORMALISED_MEAN_FILL_BGR) with a uniform aspect,
# and an anchor + K - 1 instances from its other cameras per identity
# (measured on CUHK03 in the README, the public implementation as a
# yardstick).

resize = dict(
    type='Resize',
    scale=(128, 256),  # (W, H)
    keep_ratio=False,
    interpolation='bicubic',
    backend='pillow')
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
        num_iters=200,
        instance_rule='anchor_cross_camera'),
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
