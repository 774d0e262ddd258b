# Full RCL on the camera-aware semi-supervised CUHK03 recipe with the sink
# aggregator (README, RCL): each member's weight is a softmax of its mean
# cosine to the other members of its set, with one more slot, a sink at
# the batch's mean member score, so that a set whose members fit together
# worse than usual gets small weights all round (per-set softmax weights
# are the same for four strangers as for four views of one person). HPS
# trusts a member only at weight >= 1 / n (floor 1.0): one that fits its
# set better than a typical member fits its own. The temperature is
# learned by the contrastive and consensus set losses at 30 x the
# backbone's learning rate (at 3.5e-5 it would not move).
_base_ = ['./rcl_mobilenetv2_cpu_cuhk03_semi_camera.py']

model = dict(
    aggregator=dict(
        type='SimilarityAttentionAggregator',
        embed_dims=1280,
        mlp_hidden=0,
        sink=True),
    hps=dict(floor=1.0))
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={'aggregator': dict(lr_mult=30.0, decay_mult=0.0)}))
