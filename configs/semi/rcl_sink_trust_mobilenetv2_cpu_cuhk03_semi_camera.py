# The sink RCL of rcl_sink_floor05_mobilenetv2_cpu_cuhk03_semi_camera.py
# (HPS floor 0.5 / n) whose hard positive is also never one of the 20 % of
# the clustered images least similar to their cluster's prototype at
# re-clustering (hps distrust 0.2, RCL's cluster_trust): the whole cluster
# marks a member of another identity better than the three other members
# of its in-batch set do (impostor AUC 0.82-0.83 against the sink weights'
# 0.70-0.72 on the final clusterings of the sink runs). HPS then picks an
# impostor less often than a random member in every epoch, but the
# distrusted images include a third of the cross-camera views, and the
# run ends below the sink alone (README, RCL).
_base_ = ['./rcl_sink_floor05_mobilenetv2_cpu_cuhk03_semi_camera.py']

model = dict(hps=dict(floor=0.5, distrust=0.2))
