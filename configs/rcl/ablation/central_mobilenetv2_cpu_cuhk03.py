# Ablation: cluster contrast with the "central" update (the in-batch sample
# most similar to the other in-batch samples of its prototype moves it; the
# opposite of the hard update), no aggregator.
_base_ = ['../../cluster_contrast/cluster_contrast_mobilenetv2_cpu_cuhk03.py']

model = dict(
    head=dict(memory=dict(update=dict(type='CentralMemoryUpdate'))))
