# rcl_sink_floor05_mobilenetv2_cpu_cuhk03_semi_camera.py with the memory's
# momentum at 0.5 instead of 0.2: HPS's pick moves its prototype half way
# instead of four fifths of the way. With one pick a step a prototype is
# otherwise nearly its last pick; the control is the mean update at the
# same momentum (cluster_contrast_..._camera_m05.py).
_base_ = ['./rcl_sink_floor05_mobilenetv2_cpu_cuhk03_semi_camera.py']

model = dict(head=dict(memory=dict(momentum=0.5)))
