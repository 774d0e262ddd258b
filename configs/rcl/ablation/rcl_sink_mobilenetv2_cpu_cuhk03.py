# Full RCL on the ImageNet CPU recipe with the sink aggregator, as
# configs/semi/rcl_sink_mobilenetv2_cpu_cuhk03_semi_camera.py on the
# warm-started half (README, RCL): each member's weight is a softmax of its
# mean cosine to the other members of its set with one more slot, a sink
# at the batch's mean member score; HPS trusts a member at weight >= 1 / n;
# the temperature is learned by the contrastive and consensus set losses
# at about 1e-3 (3 x the recipe's 3.5e-4).
_base_ = ['../rcl_mobilenetv2_cpu_cuhk03.py']

model = dict(
    aggregator=dict(
        _delete_=True,
        type='SimilarityAttentionAggregator',
        embed_dims=1280,
        mlp_hidden=0,
        sink=True),
    set_losses=[
        dict(type='SetContrastiveLoss'),
        dict(type='ConsensusAggregateLoss')
    ],
    hps=dict(floor=1.0))
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={'aggregator': dict(lr_mult=3.0, decay_mult=0.0)}))
