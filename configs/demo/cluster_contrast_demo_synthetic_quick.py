# A tiny version of the demo recipe, to check the set-up in seconds
# (python tools/demo.py --quick): 12 train ids x 4 cameras x 2 images at
# 64x32, one epoch of 4 iterations, evaluation before and after.
_base_ = ['./cluster_contrast_demo_synthetic.py']

data_root = 'data/synthetic_reid_quick'
generator_cfg = dict(
    num_train_ids=12,
    num_test_ids=6,
    num_cameras=4,
    images_per_id_per_camera=2,
    num_distractors=4,
    height=64,
    width=32,
    seed=0)

custom_hooks = [
    dict(
        type='ReClusterHook',
        label_generator=dict(
            type='DBSCANLabelGenerator', eps=0.6, min_samples=2, k1=6,
            k2=2)),
    dict(type='EvaluateBeforeTrainHook'),
]

train_dataloader = dict(
    batch_size=8,
    sampler=dict(num_instances=2, batch_size=8, num_iters=4),
    dataset=dict(data_root=data_root, generator_cfg=generator_cfg),
    num_workers=0,
    persistent_workers=False)
cluster_dataloader = dict(
    batch_size=32,
    dataset=dict(data_root=data_root, generator_cfg=generator_cfg),
    num_workers=0,
    persistent_workers=False)
val_dataloader = dict(
    batch_size=32,
    dataset=dict(data_root=data_root, generator_cfg=generator_cfg),
    num_workers=0,
    persistent_workers=False)
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=1)
default_hooks = dict(logger=dict(interval=1))
