default_scope = 'mmreid_rcl'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # mmengine's CheckpointHook, plus atomic writes and a last_checkpoint
    # relative to the work dir (mmreid_rcl/engine/runner/checkpoint_hook.py).
    checkpoint=dict(
        type='ReIDCheckpointHook',
        interval=1,
        max_keep_ckpts=3,
        save_best='reid/mAP',
        rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # The model's random draws re-derived from (seed, iteration) at every
    # step, so that a resumed run continues with the same draws.
    iteration_seed=dict(type='IterationSeedHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # 'auto': nccl when CUDA is usable, gloo on CPU-only machines.
    dist_cfg=dict(backend='auto'),
)

# Scalars (loss, lr, cluster/*, reid/*, ...) go to
# <work_dir>/<timestamp>/vis_data/: scalars.json from the local backend
# (read by tools/plot_logs.py and tools/summarize_run.py) and a TensorBoard
# events file (`tensorboard --logdir work_dirs`). A config that does not
# want TensorBoard sets
#   visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
# (the list replaces this one).
vis_backends = [
    dict(type='LocalVisBackend'),
    dict(type='TensorboardVisBackend'),
]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)

log_processor = dict(by_epoch=True, window_size=10)
log_level = 'INFO'
load_from = None
resume = False
# A fixed seed: the identity sampler's stream depends on it, and a resumed
# run must draw the same batches as the uninterrupted one.
randomness = dict(seed=0, deterministic=False)
