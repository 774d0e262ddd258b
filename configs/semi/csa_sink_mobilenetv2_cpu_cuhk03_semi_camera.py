# +CSA only, sink design, camera-aware neighbours: the prototypes start
# from the sink aggregator's weighted sums (Cluster Sample Aggregation)
# and are updated with the batch means (no Hard Positive Sampling).
_base_ = ['./rcl_sink_mobilenetv2_cpu_cuhk03_semi_camera.py']

model = dict(hps=None)
