# Full RCL with the sink aggregator on the CPU recipe as it is now (the
# published code's images and batches, since 2026-12-07): the recipe of
# cluster_contrast_mobilenetv2_cpu_cuhk03.py plus RCL's parts, set as in
# configs/rcl/ablation/rcl_sink_mobilenetv2_cpu_cuhk03.py (measured on the
# recipe before 2026-12-07). Trained beside `ours` and the public code by
#   python tools/run_ablation.py --protocol cuhk03_parity --only rcl_sink \
#       --other-seeds 0 1 2
_base_ = ['../cluster_contrast/cluster_contrast_mobilenetv2_cpu_cuhk03.py']

model = dict(
    type='RCL',
    # Each member's weight: a softmax of its mean cosine to the other
    # members of its set, with a sink slot at the batch's mean member score.
    aggregator=dict(
        type='SimilarityAttentionAggregator',
        embed_dims=1280,
        mlp_hidden=0,
        sink=True),
    set_losses=[
        dict(type='SetContrastiveLoss'),
        dict(type='ConsensusAggregateLoss')
    ],
    csa=dict(),
    # HPS trusts a member at weight >= 1 / n.
    hps=dict(floor=1.0),
    detach=True)
# The temperature learns at about 1e-3 (3 x the recipe's 3.5e-4).
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={'aggregator': dict(lr_mult=3.0, decay_mult=0.0)}))
