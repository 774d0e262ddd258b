"""Generalised-mean (GeM) pooling."""
import torch
from torch import nn

from mmreid_rcl.registry import MODELS


@MODELS.register_module()
class GeneralizedMeanPooling(nn.Module):
    """Generalised-mean pooling over the spatial dimensions.

    ``y_c = (mean_hw clamp(x_chw, min=eps) ** p) ** (1 / p)``, from
    Radenovic et al., "Fine-tuning CNN image retrieval with no human
    annotation", TPAMI 2018. p = 1 is average pooling and p -> inf max
    pooling; re-ID starts at p = 3 and learns it. The clamp keeps the power
    defined for the zeros and negatives a ReLU map may hold.

    Args:
        p (float): Initial exponent, > 0. Defaults to 3.0.
        eps (float): Lower clamp of the input, > 0. Defaults to 1e-6.
        learnable (bool): Learn ``p`` (a parameter of shape (1, )) instead
            of keeping it fixed (a buffer). Defaults to True.
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6,
                 learnable: bool = True):
        super().__init__()
        if not p > 0:
            raise ValueError(f'GeM p must be > 0, got {p!r}')
        if not eps > 0:
            raise ValueError(f'GeM eps must be > 0, got {eps!r}')
        self.eps = float(eps)
        self.learnable = bool(learnable)
        p_tensor = torch.full((1, ), float(p))
        if self.learnable:
            self.p = nn.Parameter(p_tensor)
        else:
            self.register_buffer('p', p_tensor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool (N, C, H, W) maps into (N, C) vectors.

        Large p overflows float32 for large activations (x ** p); p stays
        near 3 in practice.
        """
        if x.dim() != 4:
            raise ValueError('GeneralizedMeanPooling expects (N, C, H, W), '
                             f'got {tuple(x.shape)}')
        pooled = x.clamp(min=self.eps).pow(self.p).mean(dim=(-2, -1))
        return pooled.pow(1.0 / self.p)

    def extra_repr(self) -> str:
        return (f'p={self.p.item():.4f}, eps={self.eps}, '
                f'learnable={self.learnable}')
