# rcl_sink_trust_mobilenetv2_cpu_cuhk03_semi_camera.py with each image
# compared with the mean of its cluster's images from ITS camera, not with
# the prototype (hps trust_by='camera', RCL's cluster_trust). Judged by
# the prototype, the distrusted 20 % hold about a third of the genuine
# members seen from another camera than most of their cluster's (the
# cross-camera views the test rewards); judged per camera, 14-17 % of them,
# and more of the impostors (60-63 % against 52-55 %) (README, RCL).
_base_ = ['./rcl_sink_trust_mobilenetv2_cpu_cuhk03_semi_camera.py']

model = dict(hps=dict(trust_by='camera'))
