# The CPU recipe with the published code's choice of the K instances of a
# pseudo identity: an anchor, then K - 1 from the identity's other cameras
# (with repeats when fewer than K), instead of a round-robin over its
# cameras. Variant ours_anchor of the cuhk03_parity protocol.
_base_ = ['../cluster_contrast_mobilenetv2_cpu_cuhk03.py']

train_dataloader = dict(sampler=dict(instance_rule='anchor_cross_camera'))
