# Any re-ID data set with one folder of images per split and the person id
# and camera in the file names. Edit split_dirs, the name pattern (named
# groups pid and camid, or two groups in that order) and camera_offset (1
# when names count cameras from 1).
dataset_type = 'ReIDImageFolder'
data_root = 'data/reid_folder/'
split_dirs = dict(
    train='bounding_box_train', query='query', gallery='bounding_box_test')
name_pattern = r'(?P<pid>[-\d]+)_c(?P<camid>\d+)'
camera_offset = 1

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
        split_dirs=split_dirs,
        pattern=name_pattern,
        camera_offset=camera_offset))

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
        split_dirs=split_dirs,
        pattern=name_pattern,
        camera_offset=camera_offset))

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
        split_dirs=split_dirs,
        pattern=name_pattern,
        camera_offset=camera_offset))
test_dataloader = val_dataloader

val_evaluator = dict(type='ReIDMetric')
test_evaluator = val_evaluator
