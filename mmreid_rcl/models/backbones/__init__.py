from .base_backbone import BaseBackbone
from .mobilenet_v2 import (MobileNetV2, convert_mobilenetv2_state_dict,
                           load_mobilenetv2_source)
from .resnet import ReIDResNet
from .resnet_ibn import IBN, ResNetIBN

__all__ = [
    'BaseBackbone', 'ReIDResNet', 'ResNetIBN', 'IBN', 'MobileNetV2',
    'convert_mobilenetv2_state_dict', 'load_mobilenetv2_source'
]
