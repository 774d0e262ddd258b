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
    saa_loss_weight=1.0,
    saa_detach=True,
    hps_floor=0.5,
    head=dict(
        memory=dict(
            update=dict(type='HPSMemoryUpdate'),
            prototype_init=dict(
                type='CSAPrototypeInit', max_attention_elements=2**24))))
