"""SAA objective: spot impostors planted into the batch's pseudo-id sets."""
import math
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmreid_rcl.registry import MODELS
from ..necks.cluster_attention_aggregator import group_into_sets
from .base_set_loss import BaseSetLoss


def _set_references(members: torch.Tensor, num_feats: int,
                    prototypes: Optional[torch.Tensor]):
    """Normalised set means, and what sets are compared by to find donors.

    Args:
        members (Tensor): (S, n, D) normalised member features, 0 on
            padding.
        num_feats (int): D.
        prototypes (Tensor, optional): (S, D) one per set.

    Returns:
        tuple[Tensor, Tensor]: (S, D) means and (S, D) references (the
        normalised prototypes, or the means without them).
    """
    means = F.normalize(members.sum(1), dim=1)
    if prototypes is None:
        return means, means
    num_sets = members.size(0)
    if prototypes.shape != (num_sets, num_feats):
        raise ValueError(
            'plant_impostors: prototypes must be (S, D) = '
            f'{(num_sets, num_feats)}, one per distinct label, '
            f'got {tuple(prototypes.shape)}')
    return means, F.normalize(prototypes.detach().float(), dim=1)


def _nearest_donors(ref: torch.Tensor, counts: torch.Tensor,
                    num_planted: int):
    """Each set's most similar other set with ``num_planted`` members.

    Returns:
        tuple[Tensor, Tensor]: (S, ) similarity to the donor (-inf: none)
        and (S, ) the donor's set index.
    """
    sims = ref @ ref.t()
    sims = sims.masked_fill(~(counts >= num_planted)[None, :], float('-inf'))
    sims.fill_diagonal_(float('-inf'))
    if not len(counts):
        return sims.new_zeros(0), counts.new_zeros(0)
    return sims.max(1)


def _member_orders(choice: str, members: torch.Tensor, means: torch.Tensor,
                   mask: torch.Tensor, donor: torch.Tensor,
                   generator: Optional[torch.Generator],
                   device: torch.device):
    """Orders of the sets' own members (the first ones stay) and of their
    donors' members (the first ones are planted); padding last.

    Returns:
        tuple[Tensor, Tensor]: (S, n) and (S, n) positions in the sets.
    """
    num_sets, width = mask.shape
    if choice == 'random':
        own_keys = torch.rand(
            num_sets, width, generator=generator).to(device)
        donor_keys = torch.rand(
            num_sets, width, generator=generator).to(device)
    else:
        own_keys = torch.arange(
            width, device=device,
            dtype=torch.float32).expand(num_sets, width)
        donor_keys = -(members[donor] * means[:, None]).sum(-1)
    pad_key = float('inf')
    own_keys = own_keys.masked_fill(~mask, pad_key)
    donor_keys = donor_keys.masked_fill(~mask[donor], pad_key)
    own_order = torch.sort(own_keys, dim=1, stable=True).indices
    donor_order = torch.sort(donor_keys, dim=1, stable=True).indices
    return own_order, donor_order


def _assemble_planted_sets(index: torch.Tensor, set_labels: torch.Tensor,
                           valid: torch.Tensor, keep: torch.Tensor,
                           donor: torch.Tensor, own_order: torch.Tensor,
                           donor_order: torch.Tensor, num_planted: int,
                           device: torch.device) -> dict:
    """The output of :func:`plant_impostors`: the valid sets, each with its
    first ``keep`` own members and its donor's first ``num_planted``.

    Args:
        index (Tensor): (S, n) batch positions of the sets' members.
        set_labels (Tensor): (S, ) pseudo label of each set.
        valid (Tensor): (S, ) bool, the sets that are kept.
        keep (Tensor): (S, ) own members each set keeps.
        donor (Tensor): (S, ) the donor set of each set.
        own_order, donor_order (Tensor): (S, n) from
            :func:`_member_orders`.
        num_planted (int): members planted per set.
        device (torch.device): of the new tensors.
    """
    keep, donor = keep[valid], donor[valid]
    own_order, donor_order = own_order[valid], donor_order[valid]
    num_kept = int(keep.max()) if keep.numel() else 0
    own_index = index[valid].gather(1, own_order[:, :num_kept])
    own_mask = torch.arange(num_kept, device=device) < keep[:, None]
    planted_index = index[donor].gather(1, donor_order[:, :num_planted])
    rows = keep.numel()
    planted = torch.cat([
        own_mask.new_zeros(rows, num_kept),
        own_mask.new_ones(rows, num_planted)
    ], dim=1)
    return dict(
        index=torch.cat([own_index * own_mask, planted_index], dim=1),
        mask=torch.cat([own_mask, planted[:, num_kept:]], dim=1),
        planted=planted,
        set_labels=set_labels[valid],
        donor_labels=set_labels[donor])


def plant_impostors(feats: torch.Tensor,
                    labels: torch.Tensor,
                    num_planted: int = 1,
                    prototypes: Optional[torch.Tensor] = None,
                    choice: str = 'random',
                    replace: bool = True,
                    min_genuine: int = 2,
                    generator: Optional[torch.Generator] = None) -> dict:
    """Sets of the batch's pseudo identities, each with members of its
    nearest other pseudo identity planted into it.

    The in-batch samples of each pseudo label form a set (in batch order,
    as :func:`group_into_sets` makes them). The *donor* of a set is the
    most similar OTHER set of the batch, by the cosine of their prototypes
    or, without prototypes, of their normalised mean features; sets with
    fewer than ``num_planted`` members give nothing. ``num_planted`` donor
    members join the set; with ``replace`` as many of its own members
    leave it, so that it keeps its size. Sets left with fewer than
    ``min_genuine`` members of their own, or without a donor, are dropped.

    Args:
        feats (Tensor): (B, D) features (read without gradient to choose).
        labels (Tensor): (B, ) pseudo labels.
        num_planted (int): members planted per set. Defaults to 1.
        prototypes (Tensor, optional): (S, D) one per set, in the order of
            the sorted distinct labels; None compares set means.
        choice (str): ``'random'``: the planted members and the members
            that leave are drawn at random; ``'hardest'``: the donor
            members most similar to the set's mean are planted and the
            set's last members in batch order leave.
        replace (bool): keep each set's size. Defaults to True.
        min_genuine (int): fewest own members a planted set keeps.
        generator (torch.Generator, optional): for ``'random'``.

    Returns:
        dict: ``index`` (S', n') batch positions (own members first, then
        padding, then the planted ones; 0 on padding), ``mask`` (S', n')
        bool, ``planted`` (S', n') bool, ``set_labels`` (S', ) and
        ``donor_labels`` (S', ) the pseudo label of each kept set and of
        its donor. S' may be 0.
    """
    if choice not in ('random', 'hardest'):
        raise ValueError(f'plant_impostors: choice must be "random" or '
                         f'"hardest", got {choice!r}')
    if num_planted < 1 or min_genuine < 1:
        raise ValueError('plant_impostors: num_planted and min_genuine must '
                         f'be >= 1, got {num_planted} and {min_genuine}')
    index, mask, set_labels = group_into_sets(labels)
    counts = mask.sum(1)
    with torch.no_grad():
        x = F.normalize(feats.detach().float(), dim=1)
        members = x[index] * mask[..., None]
        means, ref = _set_references(members, feats.size(1), prototypes)
        best, donor = _nearest_donors(ref, counts, num_planted)
        keep = counts - num_planted if replace else counts
        valid = (keep >= min_genuine) & torch.isfinite(best)
        own_order, donor_order = _member_orders(choice, members, means, mask,
                                                donor, generator,
                                                feats.device)
    return _assemble_planted_sets(index, set_labels, valid, keep, donor,
                                  own_order, donor_order, num_planted,
                                  feats.device)


@MODELS.register_module()
class PlantedImpostorLoss(BaseSetLoss):
    """Teach an aggregator to down-weight members of another identity.

    Each in-batch pseudo-identity set gets ``num_planted`` members of its
    nearest other pseudo identity (:func:`plant_impostors`), so that the
    impostors are as hard as the ones clustering lets in. The
    aggregator's weights of a planted set are trained toward uniform over
    the set's own members and zero on the planted ones:
    ``loss_planted = KL(target || w)``, 0 when they are, ``log(n'/n)``
    for uniform weights. Unlike the contrastive set loss against the
    memory, whose lowest point is the plain mean of a set (its prototype
    is a running mean, impostors included), this rewards marking
    impostors directly.

    Options: ``margin`` adds ``loss_planted_margin``, the hinge
    ``max(0, margin - (s_own - s_planted))`` over all (own, planted) pairs
    of a set, on the aggregator's ``scores`` if it returns them (else on
    the log weights); ``contrast_weight`` adds ``loss_planted_contrast``,
    the contrastive loss of each planted set's aggregate against the
    memory at the set's OWN prototype, the donor's among the negatives:
    an aggregate that follows the impostors is penalised.

    The features are used as given: detach them to train only the
    aggregator. Besides the losses, the returned dict holds
    ``planted_lowest``, the share of planted sets whose planted members
    all weigh less than every own member (logged, not a loss).

    Args:
        num_planted (int): impostors per set. Defaults to 1.
        choice (str): ``'random'`` (default) or ``'hardest'``, see
            :func:`plant_impostors`.
        replace (bool): planted members take the place of own members, so
            sets keep their size. Defaults to True.
        min_genuine (int): fewest own members a planted set keeps; smaller
            sets are left out. Defaults to 2.
        neighbour (str): ``'prototype'`` (default): the donor is the set
            whose memory prototype is most similar (falls back to the set
            means when no memory is given); ``'set_mean'``: by the sets'
            mean features.
        loss_weight (float): weight of ``loss_planted``.
        margin (float, optional): margin of the pairwise hinge; None
            (default) leaves it out.
        margin_weight (float): weight of ``loss_planted_margin``.
        contrast_weight (float): weight of ``loss_planted_contrast``; 0
            (default) leaves it out. Needs the memory.
    """

    def __init__(self,
                 num_planted: int = 1,
                 choice: str = 'random',
                 replace: bool = True,
                 min_genuine: int = 2,
                 neighbour: str = 'prototype',
                 loss_weight: float = 1.0,
                 margin: Optional[float] = None,
                 margin_weight: float = 1.0,
                 contrast_weight: float = 0.0) -> None:
        super().__init__()
        if neighbour not in ('prototype', 'set_mean'):
            raise ValueError('PlantedImpostorLoss: neighbour must be '
                             f'"prototype" or "set_mean", got {neighbour!r}')
        if choice not in ('random', 'hardest'):
            raise ValueError('PlantedImpostorLoss: choice must be "random" '
                             f'or "hardest", got {choice!r}')
        if num_planted < 1 or min_genuine < 1:
            raise ValueError('PlantedImpostorLoss: num_planted and '
                             'min_genuine must be >= 1, got '
                             f'{num_planted} and {min_genuine}')
        self.num_planted = int(num_planted)
        self.choice = choice
        self.replace = bool(replace)
        self.min_genuine = int(min_genuine)
        self.neighbour = neighbour
        self.loss_weight = float(loss_weight)
        self.margin = None if margin is None else float(margin)
        self.margin_weight = float(margin_weight)
        self.contrast_weight = float(contrast_weight)

    def forward(self,
                aggregator: nn.Module,
                feats: torch.Tensor,
                labels: torch.Tensor,
                memory: Optional[nn.Module] = None,
                generator: Optional[torch.Generator] = None
                ) -> Dict[str, torch.Tensor]:
        """Plant, aggregate and score a batch (see :class:`BaseSetLoss`;
        the aggregator's ``scores`` are used when it returns them, the
        memory gives the prototypes (``neighbour='prototype'``) and the
        logits of ``loss_planted_contrast``; ``generator`` seeds
        ``choice='random'``).

        Returns:
            dict: ``loss_planted``, optionally ``loss_planted_margin`` and
            ``loss_planted_contrast``, and ``planted_lowest``.
        """
        if self.contrast_weight > 0 and memory is None:
            raise ValueError('PlantedImpostorLoss: contrast_weight > 0 needs '
                             'the cluster memory (memory=...)')
        prototypes = None
        if self.neighbour == 'prototype' and memory is not None:
            prototypes = memory.prototypes[torch.unique(labels)]
        sets = plant_impostors(
            feats,
            labels,
            num_planted=self.num_planted,
            prototypes=prototypes,
            choice=self.choice,
            replace=self.replace,
            min_genuine=self.min_genuine,
            generator=generator)
        mask, planted = sets['mask'], sets['planted']
        if mask.size(0) == 0:
            # Nothing to plant (one pseudo identity in the batch): a zero
            # that still reaches every parameter, for distributed training.
            zero = self.zero(aggregator)
            losses = dict(loss_planted=zero)
            if self.margin is not None:
                losses['loss_planted_margin'] = zero
            if self.contrast_weight > 0:
                losses['loss_planted_contrast'] = zero
            losses['planted_lowest'] = feats.new_zeros(())
            return losses
        x = feats[sets['index']] * mask[..., None].to(feats.dtype)
        out = aggregator(x, mask)
        weights = out['weights']
        own = mask & ~planted
        num_own = own.sum(1).to(weights.dtype)
        log_w = weights.clamp(min=1e-12).log()
        kl = -(log_w * own).sum(1) / num_own - num_own.log()
        losses = dict(loss_planted=kl.mean() * self.loss_weight)
        if self.margin is not None:
            score = out.get('scores', log_w)
            gap = score[:, :, None] - score[:, None, :]
            pairs = own[:, :, None] & planted[:, None, :]
            hinge = F.relu(self.margin - gap) * pairs
            losses['loss_planted_margin'] = (
                hinge.sum() / pairs.sum()) * self.margin_weight
        if self.contrast_weight > 0:
            logits = memory.logits(out['aggregate'])
            losses['loss_planted_contrast'] = F.cross_entropy(
                logits, sets['set_labels']) * self.contrast_weight
        with torch.no_grad():
            inf = torch.full_like(weights, math.inf)
            lowest_own = torch.where(own, weights, inf).min(1).values
            highest_planted = torch.where(planted, weights, -inf).max(1).values
            losses['planted_lowest'] = (highest_planted <
                                        lowest_own).float().mean()
        return losses
