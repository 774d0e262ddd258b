# Investigation: plain cluster contrast with P x K = 8 x 8 (batch 64), the
# reference for rcl_k8_mobilenetv2_cpu_cuhk03.py.
_base_ = ['../../cluster_contrast/cluster_contrast_mobilenetv2_cpu_cuhk03.py']

train_dataloader = dict(sampler=dict(num_instances=8))
