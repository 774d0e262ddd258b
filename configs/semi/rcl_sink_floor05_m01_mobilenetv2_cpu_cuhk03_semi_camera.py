# rcl_sink_floor05_mobilenetv2_cpu_cuhk03_semi_camera.py with the memory's
# momentum at 0.1 instead of 0.2: HPS's pick moves its prototype nine
# tenths of the way. The control is the mean update at the same momentum
# (cluster_contrast_..._camera_m01.py).
_base_ = ['./rcl_sink_floor05_mobilenetv2_cpu_cuhk03_semi_camera.py']

model = dict(head=dict(memory=dict(momentum=0.1)))
