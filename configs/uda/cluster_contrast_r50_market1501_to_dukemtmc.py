# Unsupervised domain adaptation, Market-1501 -> DukeMTMC-reID: a pair is a
# source data set (its supervised config) and a target data set (the
# cluster-contrast recipe on it, warm-started from the source checkpoint).
#   1. source, supervised:
#      python tools/train.py configs/supervised/supervised_r50_market1501.py
#      cp work_dirs/supervised_r50_market1501/epoch_120.pth \
#          checkpoints/supervised_r50_market1501.pth
#   2. target, cluster contrast from that start:
#      python tools/train.py configs/uda/cluster_contrast_r50_market1501_to_dukemtmc.py
# The backbone and neck come from the checkpoint (the classifier is dropped)
# and must match the model's (ResNet-50 last stride 1, GeM + BN neck); the
# first re-clustering of the target's train split builds the memory and
# pseudo labels. Target ids are never read for training.
_base_ = [
    '../_base_/models/cluster_contrast_r50.py',
    '../_base_/datasets/dukemtmc.py',
    '../_base_/schedules/adam_50e_step20.py',
    '../_base_/default_runtime.py',
]

model = dict(
    init_cfg=dict(
        type='WarmStart',
        checkpoint='checkpoints/supervised_r50_market1501.pth'))
# Where the source model starts: the direct-transfer accuracy.
custom_hooks = [
    dict(
        type='ReClusterHook',
        label_generator=dict(
            type='DBSCANLabelGenerator', eps=0.6, min_samples=4, k1=30,
            k2=6)),
    dict(type='EvaluateBeforeTrainHook'),
]
