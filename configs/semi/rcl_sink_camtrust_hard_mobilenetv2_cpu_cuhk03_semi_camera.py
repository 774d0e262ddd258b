# rcl_sink_camtrust_mobilenetv2_cpu_cuhk03_semi_camera.py with no floor on
# the in-batch weights: the per-camera trust alone keeps the likely
# impostors out, and HPS picks the most dispersed of the trusted members.
# At floor 0.5/n the sink's floor drops the members least similar to the
# rest of their set, which are mostly a person's views from the other
# camera: HPS then picks a genuine cross-camera member no more often than
# a random member is one (README, RCL).
_base_ = ['./rcl_sink_camtrust_mobilenetv2_cpu_cuhk03_semi_camera.py']

model = dict(hps=dict(floor=0.0))
