"""A tiny end-to-end training set-up shared by the engine tests."""
import os.path as osp

from mmengine.config import Config

from mmreid_rcl.datasets.synthetic import generate_synthetic_reid


def make_tiny_dataset(root: str) -> str:
    """A small synthetic dataset: 12 train ids x 4 cameras x 2 images."""
    generate_synthetic_reid(
        root,
        num_train_ids=12,
        num_test_ids=6,
        num_cameras=4,
        images_per_id_per_camera=2,
        num_distractors=4,
        height=64,
        width=32,
        seed=0,
        progress=False)
    return root


def tiny_config(data_root: str, work_dir: str, max_epochs: int = 2,
                num_iters: int = 4, checkpoint_iters: int = 0,
                augment: bool = False) -> Config:
    """Cluster contrast on the tiny dataset, a few iterations an epoch.

    Args:
        checkpoint_iters (int): save every this many iterations (0: only
            at the end of each epoch).
        augment (bool): random flips, crops and erasing (drawn from seeds
            the identity sampler derives from seed, epoch and position).
    """
    test_pipeline = [
        dict(type='LoadReIDImage'),
        dict(type='Resize', scale=(32, 64), keep_ratio=False,
             interpolation='bicubic'),
        dict(type='PackReIDInputs'),
    ]
    train_pipeline = list(test_pipeline)
    if augment:
        train_pipeline[2:2] = [
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
            dict(type='RandomPadCrop', padding=4),
            dict(type='RandomErasing', prob=0.5),
        ]
    dataset = dict(type='Market1501Dataset', data_root=data_root)
    loader = dict(num_workers=0, persistent_workers=False)
    checkpoint = dict(type='CheckpointHook', interval=1, max_keep_ckpts=-1)
    if checkpoint_iters:
        checkpoint = dict(
            type='CheckpointHook',
            interval=checkpoint_iters,
            by_epoch=False,
            max_keep_ckpts=-1)
    cfg = dict(
        default_scope='mmreid_rcl',
        work_dir=work_dir,
        randomness=dict(seed=0),
        model=dict(
            type='UnsupervisedReID',
            data_preprocessor=dict(type='ReIDDataPreprocessor'),
            backbone=dict(type='ReIDResNet', depth=18, last_stride=1),
            neck=dict(type='ReIDNeck', in_channels=512, pooling='gem'),
            head=dict(
                type='ClusterContrastHead',
                memory=dict(
                    type='ClusterMemory', feat_dim=512, momentum=0.2))),
        custom_hooks=[
            dict(
                type='ReClusterHook',
                label_generator=dict(
                    type='DBSCANLabelGenerator',
                    eps=0.6,
                    min_samples=2,
                    k1=6,
                    k2=2))
        ],
        train_dataloader=dict(
            batch_size=8,
            sampler=dict(
                type='IdentitySampler',
                batch_size=8,
                num_instances=2,
                num_iters=num_iters),
            dataset=dict(**dataset, split='train', pipeline=train_pipeline),
            **loader),
        cluster_dataloader=dict(
            batch_size=32,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(
                **dataset, split='train', test_mode=True,
                pipeline=test_pipeline),
            **loader),
        val_dataloader=dict(
            batch_size=32,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(**dataset, split='test', pipeline=test_pipeline),
            **loader),
        val_evaluator=dict(type='ReIDMetric'),
        optim_wrapper=dict(
            optimizer=dict(type='Adam', lr=3.5e-4, weight_decay=5e-4)),
        param_scheduler=[
            dict(type='StepLR', by_epoch=True, step_size=1, gamma=0.5)
        ],
        train_cfg=dict(
            type='ReIDTrainLoop', max_epochs=max_epochs, val_interval=100),
        val_cfg=dict(type='ValLoop'),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=checkpoint,
            sampler_seed=dict(type='DistSamplerSeedHook'),
            iteration_seed=dict(type='IterationSeedHook')),
        env_cfg=dict(dist_cfg=dict(backend='auto')),
        log_level='WARNING',
    )
    return Config(cfg)


def write_config(cfg: Config, path: str) -> str:
    cfg.dump(path)
    assert osp.isfile(path)
    return path
