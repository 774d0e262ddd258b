"""The normalised-softmax (cosine) identity classifier."""
import torch
import torch.nn.functional as F
from torch import nn

from mmreid_rcl.registry import MODELS
from .linear_classifier import _check_sizes


@MODELS.register_module()
class CosineClassifier(nn.Module):
    """``logits = s cos(f, w_c)``: normalised features and class weights.

    The normalised softmax of Wang et al. ("NormFace", ACM MM 2017): both
    the features and every class weight are L2-normalised, so the logits
    are scaled cosine similarities, the same geometry as the cosine
    distance used for retrieval. The scale ``s`` bounds the logits to
    ``[-s, s]``; too small a scale cannot reach a confident softmax over
    many classes (NormFace's bound), 16 to 32 suits hundreds to thousands
    of identities.

    Args:
        in_channels (int): feature dimension D.
        num_classes (int): identities C.
        scale (float): the scale s, > 0. Defaults to 16.0.
    """

    def __init__(self, in_channels: int, num_classes: int,
                 scale: float = 16.0):
        super().__init__()
        _check_sizes(type(self).__name__, in_channels, num_classes)
        if not scale > 0:
            raise ValueError(f'CosineClassifier scale must be > 0, got '
                             f'{scale!r}')
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.scale = float(scale)
        self.weight = nn.Parameter(torch.empty(num_classes, in_channels))
        nn.init.normal_(self.weight, std=0.01)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, D) features -> (B, C) logits in ``[-s, s]``."""
        return self.scale * (F.normalize(feats, dim=1)
                             @ F.normalize(self.weight, dim=1).t())

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, '
                f'num_classes={self.num_classes}, scale={self.scale}')
