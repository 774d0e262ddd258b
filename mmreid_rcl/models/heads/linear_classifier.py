"""The plain identity classifier of the BNNeck baseline."""
import torch
from torch import nn

from mmreid_rcl.registry import MODELS


@MODELS.register_module()
class LinearClassifier(nn.Module):
    """``logits = f W^T``: a bias-free linear layer over the identities.

    The BNNeck baseline (Luo et al., CVPRW 2019) drops the bias, since the
    batch-normalised features it classifies are already centred, and
    initialises the weights from N(0, 0.001^2).

    Args:
        in_channels (int): feature dimension D.
        num_classes (int): identities C.
        init_std (float): standard deviation of the initial weights.
            Defaults to 0.001.
    """

    def __init__(self, in_channels: int, num_classes: int,
                 init_std: float = 0.001):
        super().__init__()
        _check_sizes(type(self).__name__, in_channels, num_classes)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.weight = nn.Parameter(torch.empty(num_classes, in_channels))
        nn.init.normal_(self.weight, std=init_std)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, D) features -> (B, C) logits."""
        return feats @ self.weight.t()

    def extra_repr(self) -> str:
        return f'in_channels={self.in_channels}, ' \
            f'num_classes={self.num_classes}'


def _check_sizes(name: str, in_channels, num_classes) -> None:
    for key, value in (('in_channels', in_channels),
                       ('num_classes', num_classes)):
        if isinstance(value, bool) or not isinstance(value,
                                                     int) or value <= 0:
            raise ValueError(f'{name} {key} must be a positive int, got '
                             f'{value!r}')
