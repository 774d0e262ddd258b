"""Rules that move the prototypes of a cluster memory after a step.

Each rule takes the memory (C, D), the batch's features (B, D) and their
pseudo labels (B, ) and returns the updated memory as a NEW tensor: the old
one may still be needed by autograd for the step's backward pass.
"""
from typing import Optional

import torch
import torch.nn.functional as F

from mmreid_rcl.registry import TASK_UTILS


def _momentum_step(memory: torch.Tensor,
                   rows: torch.Tensor,
                   feats: torch.Tensor,
                   momentum: float,
                   inplace: bool = False) -> torch.Tensor:
    """M[rows] = normalise(m * M[rows] + (1 - m) * feats), rows distinct.

    On a copy of ``memory`` unless ``inplace`` (for a copy the caller
    already owns).
    """
    if not inplace:
        memory = memory.clone()
    moved = momentum * memory[rows] + (1.0 - momentum) * feats
    memory[rows] = F.normalize(moved, dim=1)
    return memory


def pick_per_prototype(score: torch.Tensor, labels: torch.Tensor,
                       largest: bool = True):
    """Per distinct label, the sample with the largest (or smallest) score.

    The selection of every update rule that moves a prototype with one of
    its samples (``hard``, ``central``, RCL's hard positive sampling).

    Returns ``(rows, picks, best)``: the distinct labels (sorted), the
    batch index of each label's pick (ties go to the first sample in batch
    order) and the picked score.
    """
    rows, inverse = torch.unique(labels, return_inverse=True)
    best = torch.full((rows.numel(), ),
                      -float('inf') if largest else float('inf'),
                      dtype=score.dtype,
                      device=score.device)
    best.scatter_reduce_(
        0, inverse, score, reduce='amax' if largest else 'amin')
    is_best = score == best[inverse]
    idx = torch.arange(labels.numel(), device=labels.device)
    picks = torch.full((rows.numel(), ),
                       labels.numel(),
                       dtype=torch.long,
                       device=labels.device)
    picks.scatter_reduce_(0, inverse[is_best], idx[is_best], reduce='amin')
    return rows, picks, best


class BaseMemoryUpdate:
    """Interface of a memory update rule."""

    def __call__(self, memory: torch.Tensor, feats: torch.Tensor,
                 labels: torch.Tensor, momentum: float) -> torch.Tensor:
        raise NotImplementedError


@TASK_UTILS.register_module()
class MeanMemoryUpdate(BaseMemoryUpdate):
    """Every sample moves its prototype, in batch order.

    Sample after sample, ``M_k = normalise(m M_k + (1 - m) f)``. Samples of
    different prototypes do not interact, so the j-th samples of all
    prototypes are applied together: K vectorised steps for a batch of
    P identities x K instances instead of P*K sequential ones.
    """

    def __call__(self, memory, feats, labels, momentum):
        if labels.numel() == 0:
            return memory.clone()
        order = torch.argsort(labels, stable=True)
        sorted_labels = labels[order]
        counts = torch.bincount(sorted_labels)
        starts = torch.cumsum(counts, 0) - counts
        # Position of each sample among the batch samples of its prototype.
        rank = torch.arange(labels.numel(), device=labels.device) - \
            starts[sorted_labels]
        # One copy for all K steps (a copy per step cost K full copies of
        # the memory, C x D, every iteration).
        memory = memory.clone()
        for r in range(int(rank.max()) + 1):
            pick = order[rank == r]
            _momentum_step(
                memory, labels[pick], feats[pick], momentum, inplace=True)
        return memory


@TASK_UTILS.register_module()
class HardMemoryUpdate(BaseMemoryUpdate):
    """Only the in-batch sample least similar to a prototype moves it."""

    def __call__(self, memory, feats, labels, momentum):
        if labels.numel() == 0:
            return memory.clone()
        sims = (feats * memory[labels]).sum(dim=1)
        rows, picks, _ = pick_per_prototype(sims, labels, largest=False)
        return _momentum_step(memory, rows, feats[picks], momentum)


@TASK_UTILS.register_module()
class CentralMemoryUpdate(BaseMemoryUpdate):
    """Only the most typical in-batch sample of a prototype moves it.

    Per prototype in the batch, the sample with the largest mean cosine
    similarity to the OTHER in-batch samples of that prototype (a lone
    sample is its own pick) moves it:
    ``M_k = normalise(m M_k + (1 - m) f_central)``. The opposite of the
    ``hard`` rule: when many clusters are impure, the least typical member
    is more often mislabelled and the most typical one less often (see
    ``tools/analysis/hps_diagnostics.py``). Ties go to the first sample in
    batch order. Features are expected L2-normalised.
    """

    def __call__(self, memory, feats, labels, momentum):
        if labels.numel() == 0:
            return memory.clone()
        same = labels[:, None] == labels[None, :]
        same.fill_diagonal_(False)
        others = same.sum(dim=1)
        sims = feats @ feats.t()
        # Exactly symmetric whatever the GEMM kernel, so that a two-member
        # set ties exactly and goes to its first sample on every CPU.
        sims = ((sims + sims.t()) / 2).masked_fill(~same, 0.0)
        score = sims.sum(dim=1) / others.clamp(min=1).to(sims.dtype)
        rows, picks, _ = pick_per_prototype(score, labels)
        return _momentum_step(memory, rows, feats[picks], momentum)


def hard_positive_picks(labels: torch.Tensor, weights: torch.Tensor,
                        floors: torch.Tensor,
                        dispersion: torch.Tensor) -> torch.Tensor:
    """Hard Positive Sampling: per pseudo label, the most dispersed of the
    samples its aggregator trusts.

    Among the samples whose weight in their set is not below their floor
    (``weights >= floors``: a sample the aggregator marks as mislabelled
    never moves the prototype), the one with the largest ``dispersion``
    (``1 - cos`` to the set's aggregate) is picked. A label none of whose
    samples is trusted gets no pick: its prototype stays where it is (with
    per-set softmax weights and a floor ratio of at most 1 every label has
    one; an aggregator with a sink can distrust a whole set).

    Args:
        labels (Tensor): (B, ) pseudo labels.
        weights, floors, dispersion (Tensor): (B, ) per sample.

    Returns:
        Tensor: (P', ) the batch index of the pick of each distinct label
        that has a trusted sample, in increasing label order.
    """
    eligible = weights >= floors
    score = torch.where(eligible, dispersion.float(),
                        torch.full_like(dispersion, -float('inf')).float())
    _, picks, best = pick_per_prototype(score, labels)
    return picks[~torch.isinf(best)]


@torch.no_grad()
def cluster_trust(features: torch.Tensor,
                  labels: torch.Tensor,
                  prototypes: torch.Tensor,
                  distrust: float,
                  cameras: Optional[torch.Tensor] = None,
                  chunk: int = 65536) -> torch.Tensor:
    """Which clustered images a clustering trusts: all but the
    ``distrust`` share of them least similar to their own cluster's
    prototype.

    A member's cosine to its cluster's prototype (the aggregate of the
    WHOLE cluster) marks the members of another identity better than its
    similarity to the few other members of an in-batch set does (README,
    RCL). The ``floor(distrust * M)`` of the M clustered images of lowest
    cosine are distrusted (ties broken by index); outliers are never
    trusted.

    With ``cameras`` an image is compared with the normalised mean of its
    cluster's images from ITS camera (itself included) instead of the
    prototype: a person's views from another camera than most of the
    cluster's are the least similar to the prototype, and the hard
    positives the test protocol (matches across cameras) rewards.

    Args:
        features (Tensor): (N, D) normalised features, ``sample_idx``
            order.
        labels (Tensor): (N, ) pseudo labels, -1 for outliers.
        prototypes (Tensor): (C, D) normalised prototypes of the labels.
        distrust (float): the share in [0, 1) distrusted.
        cameras (Tensor, optional): (N, ) camera of every image.
        chunk (int): rows per product (memory grows with chunk x D).

    Returns:
        Tensor: (N, ) bool.
    """
    if features.dim() != 2 or labels.shape != features.shape[:1]:
        raise ValueError('cluster_trust: expected (N, D) features and (N, ) '
                         f'labels, got {tuple(features.shape)} and '
                         f'{tuple(labels.shape)}')
    if not 0.0 <= distrust < 1.0:
        raise ValueError(f'cluster_trust: distrust must be in [0, 1), got '
                         f'{distrust!r}')
    clustered = torch.nonzero(labels >= 0).flatten()
    if cameras is not None:
        if cameras.shape != labels.shape:
            raise ValueError('cluster_trust: expected (N, ) cameras for the '
                             f'{len(labels)} images, got '
                             f'{tuple(cameras.shape)}')
        # One reference per (cluster, camera) group of the clustered
        # images: their normalised mean.
        cams = cameras.to(labels.device, torch.long)[clustered]
        _, cams = torch.unique(cams, return_inverse=True)
        groups = labels[clustered] * (int(cams.max()) + 1) + cams
        _, group = torch.unique(groups, return_inverse=True)
        sums = torch.zeros(int(group.max()) + 1, features.size(1),
                           device=features.device)
        sums.index_add_(0, group, features[clustered].float())
        prototypes = F.normalize(sums, dim=1)
        reference = torch.full_like(labels, -1)
        reference[clustered] = group
    else:
        reference = labels
    sims = torch.empty(len(clustered), device=features.device)
    for start in range(0, len(clustered), chunk):
        rows = clustered[start:start + chunk]
        sims[start:start + chunk] = (
            features[rows].float() *
            prototypes[reference[rows]].float()).sum(1)
    trusted = torch.zeros(len(labels), dtype=torch.bool,
                          device=features.device)
    trusted[clustered] = True
    num = int(distrust * len(clustered))
    if num > 0:
        order = torch.sort(sims, stable=True).indices
        trusted[clustered[order[:num]]] = False
    return trusted
