"""Triplet loss with batch-hard mining."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from mmreid_rcl.registry import MODELS


def euclidean_distance(x: torch.Tensor,
                       y: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Pairwise Euclidean distances of the rows of ``x`` and ``y``.

    ``sqrt(|x|^2 + |y|^2 - 2 x.y)`` with the square clamped at 1e-12, so
    that equal rows (a sample drawn twice into a batch) get a distance of
    1e-6 and a zero gradient instead of the infinite one of ``sqrt(0)``.

    Args:
        x (Tensor): (M, D).
        y (Tensor, optional): (N, D); None uses ``x``.

    Returns:
        Tensor: (M, N) distances.
    """
    y = x if y is None else y
    sq = (x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1)[None, :] -
          2.0 * x @ y.t())
    return sq.clamp(min=1e-12).sqrt()


def hard_example_mining(
        dist: torch.Tensor, labels: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The hardest positive and negative distance of every anchor.

    Args:
        dist (Tensor): (B, B) distances between the batch's samples.
        labels (Tensor): (B, ) identities.

    Returns:
        tuple[Tensor]: ``d_ap`` (B, ), the largest distance to another
        sample of the anchor's identity; ``d_an`` (B, ), the smallest
        distance to a sample of another identity; ``valid`` (B, ) bool,
        anchors that have both (the others' distances are meaningless).
    """
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.numel(), dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    neg = ~same
    d_ap = dist.masked_fill(~pos, float('-inf')).max(dim=1).values
    d_an = dist.masked_fill(~neg, float('inf')).min(dim=1).values
    valid = pos.any(dim=1) & neg.any(dim=1)
    return d_ap, d_an, valid


@MODELS.register_module()
class TripletLoss(nn.Module):
    """Batch-hard triplet loss (Hermans et al., "In defense of the triplet
    loss for person re-identification", 2017).

    Every sample of a P x K batch is an anchor; its hardest positive (the
    farthest sample of its identity, itself excluded) and hardest negative
    (the nearest sample of another identity) give
    ``max(0, d_ap - d_an + margin)``, or ``log(1 + exp(d_ap - d_an))`` with
    ``soft_margin``; the loss is the mean over the anchors that have both a
    positive and a negative (0 when none has).

    Args:
        margin (float): the margin, > 0; unused with ``soft_margin``.
            Defaults to 0.3.
        soft_margin (bool): the soft-plus form, without a margin. Defaults
            to False.
        normalize_feature (bool): L2-normalise the features first (the
            distances then lie in [0, 2]); False uses the raw features.
            Defaults to False.
        loss_weight (float): weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 margin: float = 0.3,
                 soft_margin: bool = False,
                 normalize_feature: bool = False,
                 loss_weight: float = 1.0):
        super().__init__()
        if not soft_margin and not margin > 0:
            raise ValueError(f'TripletLoss margin must be > 0, got {margin!r}'
                             ' (or set soft_margin=True)')
        self.margin = float(margin)
        self.soft_margin = bool(soft_margin)
        self.normalize_feature = bool(normalize_feature)
        self.loss_weight = float(loss_weight)

    def forward(self, feats: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        """The weighted loss of a batch.

        Args:
            feats (Tensor): (B, D) features.
            labels (Tensor): (B, ) identities.

        Returns:
            Tensor: the scalar loss.
        """
        if feats.dim() != 2 or labels.shape != feats.shape[:1]:
            raise ValueError('TripletLoss expects features (B, D) and labels '
                             f'(B, ), got {tuple(feats.shape)} and '
                             f'{tuple(labels.shape)}')
        if self.normalize_feature:
            feats = F.normalize(feats, dim=1)
        d_ap, d_an, valid = hard_example_mining(
            euclidean_distance(feats), labels)
        if not bool(valid.any()):
            # Keeps the graph (and DDP's view of used parameters) intact.
            return feats.sum() * 0.0
        gap = d_ap[valid] - d_an[valid]
        if self.soft_margin:
            loss = F.softplus(gap)
        else:
            loss = F.relu(gap + self.margin)
        return self.loss_weight * loss.mean()

    def extra_repr(self) -> str:
        return (f'margin={self.margin}, soft_margin={self.soft_margin}, '
                f'normalize_feature={self.normalize_feature}, '
                f'loss_weight={self.loss_weight}')
