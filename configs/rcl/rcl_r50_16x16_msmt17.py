# RCL, ResNet-50, 256x128, 16 pseudo identities x 16 instances.
_base_ = [
    '../_base_/models/rcl_r50.py',
    '../_base_/datasets/msmt17.py',
    '../_base_/schedules/adam_50e_step20.py',
    '../_base_/default_runtime.py',
]

train_dataloader = dict(sampler=dict(num_iters=400))

# Mixed precision on the GPU: bfloat16 autocast for the network, while the
# cluster memory, its updates and the contrastive logits stay float32.
# mmengine's AmpOptimWrapper needs a GPU (the MobileNetV2 configs are the
# CPU recipes).
optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16')
