# Full RCL (rcl_mobilenetv2_cpu_cuhk03_semi.py) on the camera-aware
# clusters of cluster_contrast_mobilenetv2_cpu_cuhk03_semi_camera.py: the
# same re-clustering hook, with camera_penalty 0.1.
_base_ = ['./rcl_mobilenetv2_cpu_cuhk03_semi.py']

custom_hooks = [
    dict(
        type='ReClusterHook',
        label_generator=dict(
            type='DBSCANLabelGenerator',
            eps=0.4,
            min_samples=4,
            k1=30,
            k2=6,
            camera_penalty=0.1)),
    dict(type='EvaluateBeforeTrainHook'),
]
