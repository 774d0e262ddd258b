# Cluster contrast, ResNet-50, the published recipe: 256x128, batch 256 =
# 16 pseudo identities x 16 instances, Adam 3.5e-4, 50 epochs, step 20.
_base_ = [
    '../_base_/models/cluster_contrast_r50.py',
    '../_base_/datasets/cuhk03.py',
    '../_base_/schedules/adam_50e_step20.py',
    '../_base_/default_runtime.py',
]

# Mixed precision on the GPU: bfloat16 autocast for the network, while the
# cluster memory, its updates and the contrastive logits stay float32.
# mmengine's AmpOptimWrapper needs a GPU (the MobileNetV2 configs are the
# CPU recipes).
optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16')
