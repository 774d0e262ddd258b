# Ablation: cluster contrast with the "hard" update (least similar in-batch
# sample per prototype), no aggregator.
# On the CPU recipe as it was until 2026-12-07 (the images and batches
# its recorded figures were measured with).
_base_ = ['../../cluster_contrast/cluster_contrast_mobilenetv2_cpu_cuhk03_previous.py']

model = dict(head=dict(memory=dict(update=dict(type='HardMemoryUpdate'))))
