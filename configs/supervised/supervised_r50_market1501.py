# Supervised BNNeck baseline ("bag of tricks", Luo et al., CVPRW 2019) on
# Market-1501: ResNet-50 (last stride 1, ImageNet init), GeM + BN neck,
# 256x128 with flip, pad-crop and random erasing, batch 64 = 16 ids x 4,
# label-smoothed cross-entropy on the BN feature and batch-hard triplet
# (margin 0.3) on the feature before it, Adam 3.5e-4 (weight decay 5e-4)
# with a 10-epoch linear warm-up and x0.1 at epochs 40 and 70, 120 epochs,
# one pass over the train images an epoch. Retrieval uses the BN feature.
# The backbone and neck are those of cluster contrast
# (configs/_base_/models/cluster_contrast_r50.py; GeM instead of the
# paper's average pooling), so the checkpoint warm-starts it
# (configs/uda/).
#   python tools/train.py configs/supervised/supervised_r50_market1501.py
_base_ = [
    '../_base_/datasets/market1501.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='SupervisedReID',
    data_preprocessor=dict(type='ReIDDataPreprocessor'),
    backbone=dict(
        type='ReIDResNet',
        depth=50,
        last_stride=1,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(type='ReIDNeck', in_channels=2048, pooling='gem'),
    head=dict(
        type='IdentityClassificationHead',
        in_channels=2048,
        num_classes=751,  # train ids of Market-1501
        classifier=dict(type='LinearClassifier'),
        loss_cls=dict(type='LabelSmoothCrossEntropyLoss', epsilon=0.1),
        loss_triplet=dict(
            type='TripletLoss', margin=0.3, normalize_feature=False)))

# P x K batches of the true ids (person_id, relabelled to 0..C-1);
# num_iters=None: len(train split) // 64 iterations an epoch.
train_dataloader = dict(
    batch_size=64,
    sampler=dict(
        num_instances=4, batch_size=64, num_iters=None,
        label_key='person_id'),
    dataset=dict(relabel=True))
# Supervised training does not re-cluster.
cluster_dataloader = None

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=3.5e-4, weight_decay=5e-4))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.1,
        by_epoch=True,
        begin=0,
        end=10,
        convert_to_iter_based=True),
    dict(
        type='MultiStepLR',
        by_epoch=True,
        begin=0,
        end=120,
        milestones=[40, 70],
        gamma=0.1),
]
train_cfg = dict(type='ReIDTrainLoop', max_epochs=120, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(checkpoint=dict(interval=10))
