# Investigation: plain cluster contrast with P x K = 8 x 8 (batch 64), the
# reference for rcl_k8_mobilenetv2_cpu_cuhk03.py.
# On the CPU recipe as it was until 2026-12-07 (the images and batches
# its recorded figures were measured with).
_base_ = ['../../cluster_contrast/cluster_contrast_mobilenetv2_cpu_cuhk03_previous.py']

train_dataloader = dict(sampler=dict(num_instances=8))
