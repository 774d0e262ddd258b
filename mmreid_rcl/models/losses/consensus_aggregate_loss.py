"""SAA objective: pull a set's aggregate toward its members' consensus."""
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmreid_rcl.registry import MODELS
from ..necks.cluster_attention_aggregator import group_into_sets
from .base_set_loss import BaseSetLoss


def consensus_targets(x: torch.Tensor,
                      mask: torch.Tensor,
                      target: str = 'trimmed',
                      num_dropped: int = 1) -> torch.Tensor:
    """A centre of each set that its least typical members cannot pull.

    A member's typicality is its mean cosine similarity to the OTHER
    members of its set. ``'trimmed'``: the normalised mean of the set
    without its ``num_dropped`` least typical members (at most n - 2 are
    dropped, so two members are always kept); ``'medoid'``: the most
    typical member. Ties go to the earlier member.

    Args:
        x (Tensor): (S, n, D) L2-normalised features, padded.
        mask (Tensor): (S, n) bool; every set needs at least 3 members
            for the target to differ from the plain mean.
        target (str): ``'trimmed'`` or ``'medoid'``.
        num_dropped (int): members left out by ``'trimmed'``.

    Returns:
        Tensor: (S, D) normalised targets, without gradient.
    """
    if target not in ('trimmed', 'medoid'):
        raise ValueError(f'consensus_targets: target must be "trimmed" or '
                         f'"medoid", got {target!r}')
    with torch.no_grad():
        x = x.detach() * mask[..., None].to(x.dtype)
        counts = mask.sum(1)
        total = x.sum(1, keepdim=True)
        typical = ((x * (total - x)).sum(-1) /
                   (counts[:, None] - 1).clamp(min=1).to(x.dtype))
        # Rank members from most to least typical, padding last; a stable
        # sort on the negated score keeps ties in member order.
        key = (-typical).masked_fill(~mask, float('inf'))
        order = torch.sort(key, dim=1, stable=True).indices
        rank = torch.empty_like(order).scatter_(
            1, order,
            torch.arange(order.size(1), device=x.device).expand_as(order))
        if target == 'medoid':
            kept = rank == 0
        else:
            dropped = (counts - 2).clamp(min=0).clamp(max=num_dropped)
            kept = mask & (rank < (counts - dropped)[:, None])
        centre = (x * kept[..., None].to(x.dtype)).sum(1)
        return F.normalize(centre, dim=1)


@MODELS.register_module()
class ConsensusAggregateLoss(BaseSetLoss):
    """Pull each in-batch set's aggregate toward its consensus.

    The in-batch samples of each pseudo identity form a set; its
    aggregate ``p`` is pulled toward a target its outliers cannot pull
    with them (:func:`consensus_targets`: the mean of its most typical
    members, or its most typical member):
    ``loss_consensus = mean over sets of 1 - cos(p, target)``. An
    aggregate that follows an atypical member moves away from the target,
    so down-weighting atypical members lowers the loss, which the
    contrastive loss against the memory never rewards. Sets of fewer than
    ``min_members`` members are left out.

    Args:
        target (str): ``'trimmed'`` (default) or ``'medoid'``.
        num_dropped (int): members ``'trimmed'`` leaves out. Defaults to 1.
        min_members (int): smallest set scored; at least 3 (with two
            members the consensus is their mean). Defaults to 3.
        loss_weight (float): weight of ``loss_consensus``.
    """

    def __init__(self,
                 target: str = 'trimmed',
                 num_dropped: int = 1,
                 min_members: int = 3,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if target not in ('trimmed', 'medoid'):
            raise ValueError('ConsensusAggregateLoss: target must be '
                             f'"trimmed" or "medoid", got {target!r}')
        if num_dropped < 1 or min_members < 3:
            raise ValueError('ConsensusAggregateLoss: expected num_dropped '
                             f'>= 1 and min_members >= 3, got {num_dropped} '
                             f'and {min_members}')
        self.target = target
        self.num_dropped = int(num_dropped)
        self.min_members = int(min_members)
        self.loss_weight = float(loss_weight)

    def forward(self,
                aggregator: nn.Module,
                feats: torch.Tensor,
                labels: torch.Tensor,
                memory: Optional[nn.Module] = None
                ) -> Dict[str, torch.Tensor]:
        """Aggregate the batch's sets (see :class:`BaseSetLoss`; the memory
        is not used) and score them; returns ``loss_consensus``."""
        index, mask, _ = group_into_sets(labels)
        scored = mask.sum(1) >= self.min_members
        if not bool(scored.any()):
            return dict(loss_consensus=self.zero(aggregator))
        index, mask = index[scored], mask[scored]
        out = self.aggregate(aggregator, feats, index, mask)
        x = feats[index] * mask[..., None].to(feats.dtype)
        targets = consensus_targets(
            F.normalize(x, dim=-1), mask, self.target, self.num_dropped)
        cos = (out['aggregate'] * targets).sum(1)
        return dict(loss_consensus=(1.0 - cos).mean() * self.loss_weight)
