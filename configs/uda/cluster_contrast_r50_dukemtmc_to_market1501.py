# Unsupervised domain adaptation, DukeMTMC-reID -> Market-1501 (see
# cluster_contrast_r50_market1501_to_dukemtmc.py for the scheme).
#   python tools/train.py configs/supervised/supervised_r50_dukemtmc.py
#   cp work_dirs/supervised_r50_dukemtmc/epoch_120.pth \
#       checkpoints/supervised_r50_dukemtmc.pth
#   python tools/train.py configs/uda/cluster_contrast_r50_dukemtmc_to_market1501.py
_base_ = [
    '../_base_/models/cluster_contrast_r50.py',
    '../_base_/datasets/market1501.py',
    '../_base_/schedules/adam_50e_step20.py',
    '../_base_/default_runtime.py',
]

model = dict(
    init_cfg=dict(
        type='WarmStart', checkpoint='checkpoints/supervised_r50_dukemtmc.pth'))
custom_hooks = [
    dict(
        type='ReClusterHook',
        label_generator=dict(
            type='DBSCANLabelGenerator', eps=0.6, min_samples=4, k1=30,
            k2=6)),
    dict(type='EvaluateBeforeTrainHook'),
]
