"""Pooling + batch-norm neck ("BNNeck") giving the re-ID embedding."""
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from mmreid_rcl.registry import MODELS

# Short names for the usual poolings; any registered pooling config works.
POOLING_ALIASES = {
    'gem': dict(type='GeneralizedMeanPooling'),
    'avg': dict(type='GlobalAveragePooling'),
    'max': dict(type='GlobalMaxPooling'),
}


@MODELS.register_module()
class ReIDNeck(BaseModule):
    """Global pooling, then BatchNorm1d with a frozen zero bias.

    The batch norm (the "BNNeck" of Luo et al., "Bag of tricks and a strong
    baseline for deep person re-identification", CVPRW 2019) re-centres and
    scales each channel so that features compare well by cosine; its bias
    is fixed at zero (``requires_grad=False``) because a shift would move
    all features alike and only spoil the angular geometry the contrastive
    loss relies on.

    Args:
        in_channels (int): Channels C of the backbone map, e.g.
            ``backbone.out_channels`` (2048 for ResNet-50, 1280 for
            MobileNetV2).
        pooling (str or dict or nn.Module): ``'gem'`` (learnable GeM, p=3,
            eps=1e-6), ``'avg'``, ``'max'``, or a config of a pooling
            registered in ``MODELS`` such as
            ``dict(type='GeneralizedMeanPooling', p=3.0, learnable=False)``.
            Defaults to ``'gem'``.
        with_bn (bool): Apply the batch norm. Defaults to True.
        normalize (bool): L2-normalise the output. Defaults to False.
        init_cfg (dict or list[dict], optional): Initialisation config.

    Attributes:
        out_channels (int): Dimension D of the output, equal to
            ``in_channels``.
    """

    def __init__(self,
                 in_channels: int,
                 pooling: Union[str, dict, nn.Module] = 'gem',
                 with_bn: bool = True,
                 normalize: bool = False,
                 init_cfg: Optional[Union[dict, Sequence[dict]]] = None):
        super().__init__(init_cfg=init_cfg)
        if not isinstance(in_channels, int) or isinstance(
                in_channels, bool) or in_channels <= 0:
            raise ValueError('in_channels must be a positive int, got '
                             f'{in_channels!r}')
        self.in_channels = in_channels
        self.out_channels = in_channels
        self.normalize = bool(normalize)

        if isinstance(pooling, str):
            if pooling not in POOLING_ALIASES:
                raise ValueError(
                    f'pooling must be one of {sorted(POOLING_ALIASES)} or a '
                    f'pooling config dict, got {pooling!r}')
            pooling = dict(POOLING_ALIASES[pooling])
        if isinstance(pooling, dict):
            pooling = MODELS.build(pooling)
        elif not isinstance(pooling, nn.Module):
            raise TypeError('pooling must be a str, a config dict or an '
                            f'nn.Module, got {type(pooling).__name__}')
        self.pool = pooling

        if with_bn:
            self.bn = nn.BatchNorm1d(in_channels)
            nn.init.ones_(self.bn.weight)
            nn.init.zeros_(self.bn.bias)
            self.bn.bias.requires_grad_(False)
        else:
            self.bn = None

    def forward(
        self, inputs: Union[torch.Tensor, Sequence[torch.Tensor]]
    ) -> torch.Tensor:
        """Embed the last backbone map.

        Args:
            inputs (Tensor or Sequence[Tensor]): A map (N, C, H, W) or the
                tuple of maps a backbone returns (the last one is used).

        Returns:
            torch.Tensor: Features of shape (N, C), unit-norm rows when
            ``normalize=True``.
        """
        if isinstance(inputs, (tuple, list)):
            if not inputs:
                raise ValueError('ReIDNeck got an empty sequence of maps')
            inputs = inputs[-1]
        if inputs.dim() != 4 or inputs.size(1) != self.in_channels:
            raise ValueError(
                f'ReIDNeck expects maps of shape (N, {self.in_channels}, H, '
                f'W) (in_channels={self.in_channels}), got '
                f'{tuple(inputs.shape)}')
        feats = self.pool(inputs)
        if self.bn is not None:
            feats = self.bn(feats)
        if self.normalize:
            feats = F.normalize(feats, dim=1)
        return feats
