# Full RCL on the camera-aware semi-supervised CUHK03 recipe
# (cluster_contrast_mobilenetv2_cpu_cuhk03_semi_camera.py: camera_penalty
# 0.1 in the clustering) with the objective the probe chose
# (tools/analysis/probe_set_objective.py; README, RCL): the similarity
# aggregator (SimilarityAttentionAggregator: weights that start as a
# softmax of each member's mean cosine to the others, with learned
# corrections) trained by the contrastive set loss and the consensus
# target (each set's aggregate pulled toward the mean of its most typical
# members, so that down-weighting an atypical member lowers the loss).
# CSA initialisation and the HPS update, floor 0.5 / n.
_base_ = ['./cluster_contrast_mobilenetv2_cpu_cuhk03_semi_camera.py']

model = dict(
    type='RCL',
    aggregator=dict(type='SimilarityAttentionAggregator', embed_dims=1280),
    set_losses=[
        dict(type='SetContrastiveLoss'),
        dict(type='ConsensusAggregateLoss')
    ],
    csa=dict(),
    hps=dict(floor=0.5),
    detach=True)
