# Cluster contrast, ResNet-50, the published recipe: 256x128, batch 256 =
# 16 pseudo identities x 16 instances, Adam 3.5e-4, 50 epochs, step 20.
_base_ = [
    '../_base_/models/cluster_contrast_r50.py',
    '../_base_/datasets/market1501.py',
    '../_base_/schedules/adam_50e_step20.py',
    '../_base_/default_runtime.py',
]
