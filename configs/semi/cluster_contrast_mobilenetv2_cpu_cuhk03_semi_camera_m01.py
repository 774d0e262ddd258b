# cluster_contrast_mobilenetv2_cpu_cuhk03_semi_camera.py with the memory's
# momentum at 0.1 instead of 0.2 (M_k = 0.1 M_k + 0.9 f): the control for
# RCL at the same momentum (rcl_sink_floor05_m01_...).
_base_ = ['./cluster_contrast_mobilenetv2_cpu_cuhk03_semi_camera.py']

model = dict(head=dict(memory=dict(momentum=0.1)))
