# Ablation: cluster contrast with the "central" update (the in-batch sample
# most similar to the other in-batch samples of its prototype moves it; the
# opposite of the hard update), no aggregator.
# On the CPU recipe as it was until 2026-12-07 (the images and batches
# its recorded figures were measured with).
_base_ = ['../../cluster_contrast/cluster_contrast_mobilenetv2_cpu_cuhk03_previous.py']

model = dict(
    head=dict(memory=dict(update=dict(type='CentralMemoryUpdate'))))
