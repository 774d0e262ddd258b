# The sink RCL of rcl_sink_mobilenetv2_cpu_cuhk03_semi_camera.py with HPS
# trusting members down to weight 0.5 / n: a member half as typical as an
# average one may still update its prototype. At floor 1.0 only 0.8 of the
# pseudo ids had a trusted member in the final epochs, so a fifth of the
# prototypes stood still for a step; at 0.5 about 0.92 do (README, RCL).
_base_ = ['./rcl_sink_mobilenetv2_cpu_cuhk03_semi_camera.py']

model = dict(hps=dict(floor=0.5))
