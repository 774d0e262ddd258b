# rcl_sink_trust_mobilenetv2_cpu_cuhk03_semi_camera.py with each image
# compared with the mean of its cluster's images from ITS camera, not with
# the prototype (hps trust_by='camera', RCL.cluster_trust). Judged by the
# prototype, the distrusted 20 % hold a third of the genuine members seen
# from a camera other than most of their cluster's: the cross-camera
# views the test rewards. Per camera, they hold 15-18 % of them and more of
# the impostors (61-67 % against 56-60 %). On the first clustering of U,
# HPS then picks an impostor in 2.8 % of the sets (prototype 3.2 %, the
# sink alone 4.0 %) and a member of another camera than most of its
# cluster's as often as with the sink alone (README, RCL).
_base_ = ['./rcl_sink_trust_mobilenetv2_cpu_cuhk03_semi_camera.py']

model = dict(hps=dict(trust_by='camera'))
