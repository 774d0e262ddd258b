# Full RCL with the multi-head attention aggregator and the contrastive set
# loss alone (the original RCL, as in rcl_mobilenetv2_cpu_cuhk03_semi.py)
# on the camera-aware clusters of rcl_mobilenetv2_cpu_cuhk03_semi_camera.py.
# Kept for the objective probe (README, RCL): on these clusters its weights
# score impostors higher than genuine members (AUC 0.47 untrained, 0.43
# after training), below the similarity reference (0.58).
_base_ = ['./rcl_mobilenetv2_cpu_cuhk03_semi_camera.py']

model = dict(
    aggregator=dict(
        _delete_=True,
        type='ClusterAttentionAggregator',
        embed_dims=1280,
        num_heads=8,
        dropout=0.0,
        pre_norm=True,
        zero_init_out=True),
    set_losses=[dict(type='SetContrastiveLoss', loss_weight=1.0)])
