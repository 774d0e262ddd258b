# rcl_sink_camtrust_mobilenetv2_cpu_cuhk03_semi_camera.py with no floor on
# the in-batch weights: the per-camera trust alone keeps the likely
# impostors out, and HPS picks the most dispersed of the trusted members,
# a hard positive the whole cluster vouches for. With the sink's floor at
# 0.5/n HPS picks a genuine member seen from another camera than most of
# its cluster's as often as a random member is one; here as often as the
# hard update does, with fewer impostors than a random member. It loses
# against the floor (README, RCL: 2 seeds, 32.98 / 35.87).
_base_ = ['./rcl_sink_camtrust_mobilenetv2_cpu_cuhk03_semi_camera.py']

model = dict(hps=dict(floor=0.0))
