# RCL: cluster contrast + a ClusterAttentionAggregator that initialises the
# prototypes (CSA), is trained on the batch's per-identity sets (SAA loss),
# and picks the hard positive that updates each prototype (HPS).
_base_ = ['./cluster_contrast_r50.py']

model = dict(
    type='RCL',
    aggregator=dict(
        type='ClusterAttentionAggregator',
        embed_dims=2048,
        num_heads=8,
        dropout=0.0,
        pre_norm=True,
        zero_init_out=True),
    set_losses=[dict(type='SetContrastiveLoss', loss_weight=1.0)],
    csa=dict(max_attention_elements=2**24),
    hps=dict(floor=0.5),
    detach=True)
