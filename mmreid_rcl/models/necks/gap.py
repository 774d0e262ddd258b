"""Global average pooling."""
import torch
from torch import nn

from mmreid_rcl.registry import MODELS


@MODELS.register_module()
class GlobalAveragePooling(nn.Module):
    """Average over the spatial dimensions: (N, C, H, W) -> (N, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError('GlobalAveragePooling expects (N, C, H, W), '
                             f'got {tuple(x.shape)}')
        return x.mean(dim=(-2, -1))
