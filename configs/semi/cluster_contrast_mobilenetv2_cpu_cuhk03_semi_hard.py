# The semi-supervised CUHK03 recipe (cluster contrast on U, warm-started
# from the supervised model of L) with the hard memory update: each
# prototype moves toward its least similar in-batch sample.
_base_ = ['./cluster_contrast_mobilenetv2_cpu_cuhk03_semi.py']

model = dict(head=dict(memory=dict(update=dict(type='HardMemoryUpdate'))))
