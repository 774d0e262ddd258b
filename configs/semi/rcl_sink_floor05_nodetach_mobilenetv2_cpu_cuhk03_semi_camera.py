# rcl_sink_floor05_mobilenetv2_cpu_cuhk03_semi_camera.py with the set
# losses training the backbone too (detach=False): the contrastive loss of
# each in-batch set's aggregate against the memory and the consensus loss
# then also move the features, not only the aggregator's temperature.
# Every other RCL run here trains the backbone by the cluster contrast
# loss alone.
_base_ = ['./rcl_sink_floor05_mobilenetv2_cpu_cuhk03_semi_camera.py']

model = dict(detach=False)
