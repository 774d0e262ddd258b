"""What every re-ID model shares: images -> normalised features."""
from typing import List, Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel

from mmreid_rcl.registry import MODELS
from mmreid_rcl.structures import ReIDDataSample


class BaseReID(BaseModel):
    """Backbone + neck + head; retrieval features and the Runner's modes.

    ``extract_feat`` gives the neck's output, L2-normalised in float32
    (also when the backbone runs in reduced precision under autocast), so
    evaluation, the inferencer and the tools treat every subclass alike.
    Subclasses implement ``loss``.

    Args:
        backbone (dict): backbone config.
        neck (dict): neck config; must return (B, D) features.
        head (dict): head config.
        data_preprocessor (dict, optional): e.g.
            ``dict(type='ReIDDataPreprocessor')`` (the default).
        channels_last (bool): run the backbone in the channels-last memory
            format, much faster on CPUs for depthwise convolutions (about
            1.6x training and 3x inference for MobileNetV2 here) with the
            same results up to float rounding. Defaults to False.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 data_preprocessor: Optional[dict] = None,
                 channels_last: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='ReIDDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.backbone.to(memory_format=torch.channels_last)
        self.neck = MODELS.build(neck)
        self.head = MODELS.build(head)

    def backbone_maps(self, inputs: torch.Tensor):
        """The backbone's output for (B, 3, H, W) normalised images."""
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return self.backbone(inputs)

    def extract_feat(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, D) L2-normalised float32
        features."""
        feats = self.neck(self.backbone_maps(inputs))
        return F.normalize(feats.float(), dim=1)

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[ReIDDataSample]] = None,
                mode: str = 'tensor'):
        if mode == 'tensor':
            return self.extract_feat(inputs)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise ValueError(f'invalid mode "{mode}": expected tensor, loss or '
                         'predict')

    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[List[ReIDDataSample]] = None
                ) -> List[ReIDDataSample]:
        """The features of a batch, stored in its data samples."""
        feats = self.extract_feat(inputs)
        if data_samples is None:
            data_samples = [ReIDDataSample() for _ in range(feats.size(0))]
        for sample, feat in zip(data_samples, feats):
            sample.features = feat.detach()
        return data_samples

    def loss(self, inputs: torch.Tensor, data_samples: List[ReIDDataSample]):
        raise NotImplementedError
