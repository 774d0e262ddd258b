# +HPS only, sink design with floor 0.5 / n, camera-aware neighbours: the
# prototypes start from the cluster means and are updated with the hard
# positive the sink weights trust (no Cluster Sample Aggregation).
_base_ = ['./rcl_sink_floor05_mobilenetv2_cpu_cuhk03_semi_camera.py']

model = dict(csa=None)
