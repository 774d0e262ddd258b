# cluster_contrast_mobilenetv2_cpu_cuhk03_semi_camera.py with the memory's
# momentum at 0.5 instead of 0.2: each sample moves its prototype half
# way (M_k = 0.5 M_k + 0.5 f) instead of four fifths of the way, so that a
# prototype is less nearly its last sample. The control for RCL at the
# same momentum (rcl_sink_floor05_m05_...): RCL moves each prototype with
# one sample a step, the mean update with all of its batch's samples.
_base_ = ['./cluster_contrast_mobilenetv2_cpu_cuhk03_semi_camera.py']

model = dict(head=dict(memory=dict(momentum=0.5)))
