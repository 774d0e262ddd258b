# The semi-supervised CUHK03 recipe (cluster contrast on U, warm-started
# from the supervised model of L) with full RCL: CSA initialisation, SAA
# training and the HPS update, set as in configs/rcl/rcl_mobilenetv2_cpu_
# cuhk03.py.
_base_ = ['./cluster_contrast_mobilenetv2_cpu_cuhk03_semi.py']

model = dict(
    type='RCL',
    aggregator=dict(
        type='ClusterAttentionAggregator',
        embed_dims=1280,
        num_heads=8,
        dropout=0.0,
        pre_norm=True,
        zero_init_out=True),
    set_losses=[dict(type='SetContrastiveLoss', loss_weight=1.0)],
    csa=dict(),
    hps=dict(floor=0.5),
    detach=True)
