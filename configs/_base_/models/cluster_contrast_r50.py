# Cluster contrast with ResNet-50 (last stride 1, ImageNet init), GeM + BN
# neck, a cluster memory of normalised prototypes and DBSCAN on the
# k-reciprocal Jaccard distance, re-clustered before every epoch.
model = dict(
    type='UnsupervisedReID',
    data_preprocessor=dict(type='ReIDDataPreprocessor'),
    backbone=dict(
        type='ReIDResNet',
        depth=50,
        last_stride=1,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(type='ReIDNeck', in_channels=2048, pooling='gem'),
    head=dict(
        type='ClusterContrastHead',
        memory=dict(
            type='ClusterMemory',
            feat_dim=2048,
            temperature=0.05,
            momentum=0.1,
            update=dict(type='MeanMemoryUpdate'),
            prototype_init=dict(type='MeanPrototypeInit'))))

custom_hooks = [
    dict(
        type='ReClusterHook',
        label_generator=dict(
            type='DBSCANLabelGenerator', eps=0.6, min_samples=4, k1=30,
            k2=6))
]
