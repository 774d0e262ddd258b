# Semi-supervised CUHK03, CPU recipe: cluster contrast on the unlabelled
# half U of the train ids, warm-started from the supervised model trained
# on the labelled half L (configs/supervised/
# supervised_mobilenetv2_cpu_cuhk03.py; L and U are the two parts of the
# same seeded id split, disjoint and complete). Everything else is the
# cluster-contrast CPU recipe (MobileNetV2, 128x64, 16 x 4, 100 iterations,
# 12 epochs), evaluated on the full CUHK03 test split.
#   python tools/train.py configs/supervised/supervised_mobilenetv2_cpu_cuhk03.py
#   cp work_dirs/supervised_mobilenetv2_cpu_cuhk03/epoch_30.pth \
#       checkpoints/supervised_mobilenetv2_cpu_cuhk03_labelled.pth
#   python tools/train.py configs/semi/cluster_contrast_mobilenetv2_cpu_cuhk03_semi.py
# The warm start loads the backbone and neck (the classifier is dropped);
# the first re-clustering builds the memory and pseudo labels. The
# checkpoint is read from checkpoints/, not from the work dir, so that
# re-running or cleaning the supervised work dir cannot change what this
# run starts from. `--resume` restores from this run's own checkpoints.
_base_ = ['../cluster_contrast/cluster_contrast_mobilenetv2_cpu_cuhk03.py']

warm_start_checkpoint = \
    'checkpoints/supervised_mobilenetv2_cpu_cuhk03_labelled.pth'
model = dict(
    init_cfg=dict(type='WarmStart', checkpoint=warm_start_checkpoint))

# The re-clustering loader and the training loader must serve the same
# images (the hook checks it).
unlabelled = dict(fraction=0.5, seed=0, part='unlabelled')
train_dataloader = dict(dataset=dict(id_subset=unlabelled))
cluster_dataloader = dict(dataset=dict(id_subset=unlabelled))
