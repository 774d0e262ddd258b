# Ablation: cluster contrast with the "hard" update (least similar in-batch
# sample per prototype), no aggregator.
_base_ = ['../../cluster_contrast/cluster_contrast_mobilenetv2_cpu_cuhk03.py']

model = dict(head=dict(memory=dict(update=dict(type='HardMemoryUpdate'))))
