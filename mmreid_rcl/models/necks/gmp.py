"""Global max pooling."""
import torch
from torch import nn

from mmreid_rcl.registry import MODELS


@MODELS.register_module()
class GlobalMaxPooling(nn.Module):
    """Maximum over the spatial dimensions: (N, C, H, W) -> (N, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError('GlobalMaxPooling expects (N, C, H, W), '
                             f'got {tuple(x.shape)}')
        return x.amax(dim=(-2, -1))
