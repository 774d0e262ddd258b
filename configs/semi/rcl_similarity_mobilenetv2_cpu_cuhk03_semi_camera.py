# A candidate objective of the probe (README, RCL): full RCL as in
# rcl_mobilenetv2_cpu_cuhk03_semi_camera.py, with the similarity aggregator
# (SimilarityAttentionAggregator: weights that start as a softmax of each
# member's mean cosine to the others, with learned corrections) trained by
# the contrastive set loss alone.
_base_ = ['./rcl_mobilenetv2_cpu_cuhk03_semi_camera.py']

model = dict(
    aggregator=dict(type='SimilarityAttentionAggregator', embed_dims=1280),
    set_losses=[dict(type='SetContrastiveLoss')])
