# The camera-aware semi-supervised CUHK03 recipe (camera_penalty 0.1 in
# the clustering; cluster_contrast_mobilenetv2_cpu_cuhk03_semi_camera.py)
# with the hard memory update: each prototype moves toward its least
# similar in-batch sample.
_base_ = ['./cluster_contrast_mobilenetv2_cpu_cuhk03_semi_camera.py']

model = dict(head=dict(memory=dict(update=dict(type='HardMemoryUpdate'))))
