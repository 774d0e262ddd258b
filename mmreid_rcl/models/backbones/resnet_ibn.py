"""ResNet-IBN-a: instance-batch normalisation in the first three stages."""
from typing import Optional, Sequence, Union

import torch
from torch import nn

from mmreid_rcl.registry import MODELS
from .resnet import ReIDResNet


class IBN(nn.Module):
    """Instance-batch normalisation (IBN-Net, Pan et al., ECCV 2018).

    The first ``round(channels * ratio)`` channels are instance-normalised,
    which removes per-image appearance such as colour and contrast, the
    rest are batch-normalised, which keeps content discrimination. The
    submodule names ``IN`` and ``BN`` follow IBN-Net's released checkpoints.

    Args:
        channels (int): Number of input channels C.
        ratio (float): Share of channels given to instance norm, in (0, 1).
            Defaults to 0.5.
    """

    def __init__(self, channels: int, ratio: float = 0.5):
        super().__init__()
        if not 0 < ratio < 1:
            raise ValueError(f'ibn_ratio must be in (0, 1), got {ratio!r}')
        self.half = int(channels * ratio)
        if not 0 < self.half < channels:
            raise ValueError(f'ibn_ratio={ratio} leaves no channel for one '
                             f'of IN/BN with {channels} channels')
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(channels - self.half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise (N, C, H, W) features; the output has the same shape."""
        inst, batch = torch.split(
            x, [self.half, x.size(1) - self.half], dim=1)
        return torch.cat([self.IN(inst.contiguous()), self.BN(batch)], dim=1)


@MODELS.register_module()
class ResNetIBN(ReIDResNet):
    """ResNet-IBN-a backbone (``resnet50_ibn_a`` of IBN-Net) for re-ID.

    The first norm (``bn1``) of every block of the stages listed in
    ``ibn_stages`` becomes an :class:`IBN` layer; IBN-a uses the first three
    stages and keeps ``layer4`` plain, since instance norm in deep layers
    removes identity information. Everything else, ``last_stride`` included,
    is as in :class:`ReIDResNet`, and module names are those of IBN-Net's
    ``resnet50_ibn_a`` (``layer1.0.bn1.IN.weight``, ...), so its released
    ImageNet checkpoints can be given to ``init_cfg``.

    Args:
        depth (int): 18, 34, 50, 101 or 152. Defaults to 50.
        ibn_stages (Sequence[bool]): For each of the four stages, whether its
            blocks use IBN. Defaults to (True, True, True, False).
        ibn_ratio (float): Share of the channels instance-normalised.
            Defaults to 0.5.
        **kwargs: ``last_stride``, ``out_indices``, ``frozen_stages``,
            ``norm_eval`` and ``init_cfg`` of :class:`ReIDResNet`.

    Attributes:
        out_channels (int): Channels of the last returned map (2048 for
            ResNet-50-IBN-a).
    """

    def __init__(self,
                 depth: int = 50,
                 ibn_stages: Sequence[bool] = (True, True, True, False),
                 ibn_ratio: float = 0.5,
                 init_cfg: Optional[Union[dict, Sequence[dict]]] = None,
                 **kwargs):
        super().__init__(depth=depth, init_cfg=init_cfg, **kwargs)
        if len(ibn_stages) != 4:
            raise ValueError('ibn_stages must give one bool per stage (4), '
                             f'got {ibn_stages!r}')
        self.ibn_stages = tuple(bool(s) for s in ibn_stages)
        self.ibn_ratio = ibn_ratio
        for stage, use_ibn in enumerate(self.ibn_stages):
            if use_ibn:
                for block in getattr(self, f'layer{stage + 1}'):
                    block.bn1 = IBN(block.bn1.num_features, ibn_ratio)
        # The parent froze the plain norms just replaced; freeze again so the
        # IBN layers of frozen stages are covered.
        self._freeze_stages()
