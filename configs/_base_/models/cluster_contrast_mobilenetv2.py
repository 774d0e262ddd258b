# Cluster contrast with MobileNetV2 (1280-d), for CPU runs. The ImageNet
# weights are converted once with
#   python tools/model_converters/mobilenetv2_to_mmreid.py \
#       ../shared/weights/mobilenetv2_imagenet.pt \
#       checkpoints/mobilenetv2_imagenet_mmreid.pth
_base_ = ['./cluster_contrast_r50.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/mobilenetv2_imagenet_mmreid.pth')),
    neck=dict(in_channels=1280),
    head=dict(memory=dict(feat_dim=1280)))
