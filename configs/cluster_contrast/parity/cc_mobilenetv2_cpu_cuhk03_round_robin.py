# The CPU recipe with the K instances of a pseudo identity drawn round-robin
# over its cameras (repeats only when it has fewer than K images), as this
# project did before 2026-12-07, instead of the published anchor + K - 1
# from the anchor's other cameras. Variant ours_round_robin of the
# cuhk03_parity protocol.
_base_ = ['../cluster_contrast_mobilenetv2_cpu_cuhk03.py']

train_dataloader = dict(sampler=dict(instance_rule='round_robin'))
