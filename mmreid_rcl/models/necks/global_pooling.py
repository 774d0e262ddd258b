"""Global average and max pooling over the spatial dimensions."""
import torch
from torch import nn

from mmreid_rcl.registry import MODELS


class _GlobalPooling(nn.Module):
    """(N, C, H, W) -> (N, C) by ``_pool`` over H and W."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f'{type(self).__name__} expects (N, C, H, W), '
                             f'got {tuple(x.shape)}')
        return self._pool(x)


@MODELS.register_module()
class GlobalAveragePooling(_GlobalPooling):
    """Average over the spatial dimensions: (N, C, H, W) -> (N, C)."""

    @staticmethod
    def _pool(x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(-2, -1))


@MODELS.register_module()
class GlobalMaxPooling(_GlobalPooling):
    """Maximum over the spatial dimensions: (N, C, H, W) -> (N, C)."""

    @staticmethod
    def _pool(x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(-2, -1))
