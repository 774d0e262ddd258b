# RCL with the CPU recipe on CUHK03 (MobileNetV2, 128x64, 16 x 4, 12 epochs).
# On the CPU recipe as it was until 2026-12-07 (the images and batches
# its recorded figures were measured with).
_base_ = ['../cluster_contrast/cluster_contrast_mobilenetv2_cpu_cuhk03_previous.py']

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
