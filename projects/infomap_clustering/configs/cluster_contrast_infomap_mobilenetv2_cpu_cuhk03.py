# The CPU recipe of cluster contrast on CUHK03 (MobileNetV2, 128x64,
# 16 x 4, 100 iterations a epoch, 12 epochs) with InfoMap on a kNN graph
# instead of DBSCAN on the Jaccard distance. Train from the repository
# root (see projects/infomap_clustering/README.md):
#   python tools/train.py <this file>
# On the CPU recipe as it was until 2026-12-07 (the images and batches its
# recorded figures were measured with).
_base_ = [
    '../../../configs/cluster_contrast/'
    'cluster_contrast_mobilenetv2_cpu_cuhk03_previous.py'
]

custom_imports = dict(
    imports=['projects.infomap_clustering.infomap_clustering'],
    allow_failed_imports=False)

custom_hooks = [
    dict(
        type='ReClusterHook',
        label_generator=dict(
            type='InfomapLabelGenerator',
            k=15,
            min_similarity=0.5,
            min_size=4)),
    dict(type='EvaluateBeforeTrainHook'),
]
