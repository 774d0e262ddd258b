"""Does a set objective teach an aggregator to mark impostors? A probe on
frozen features.

Training a whole RCL run takes hours; whether its set objective teaches
the aggregator anything can be measured in minutes on the features of a
trained model: the clusters of a clustering are split in two halves, the
aggregator is trained with the objective on sets drawn from the first
half (as the identity sampler draws them), against a memory of the
clusters' mean prototypes, and its weights are judged on the second half
by :func:`~mmreid_rcl.evaluation.functional.impostor_report` (true ids
are read for that judgement only).
"""
import copy
import inspect
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from mmreid_rcl.evaluation.functional import impostor_report
from mmreid_rcl.models.memories import ClusterMemory, cluster_means
from mmreid_rcl.registry import MODELS

__all__ = ['split_clusters', 'probe_set_objective']


def split_clusters(labels: np.ndarray, seed: int = 0,
                   fraction: float = 0.5):
    """Two disjoint clusterings: a seeded ``fraction`` of the clusters
    (labels renumbered 0..C1-1, the rest -1) and the other clusters
    (renumbered 0..C2-1, the rest -1)."""
    labels = np.asarray(labels)
    clusters = np.unique(labels[labels >= 0])
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(clusters)[:int(round(fraction * len(clusters)))]
    first = np.isin(labels, chosen) & (labels >= 0)
    second = ~np.isin(labels, chosen) & (labels >= 0)
    out = []
    for keep in (first, second):
        part = np.full(len(labels), -1, dtype=np.int64)
        _, part[keep] = np.unique(labels[keep], return_inverse=True)
        out.append(part)
    return out[0], out[1]


def _batches(labels: np.ndarray, num_ids: int, k: int, steps: int,
             rng: np.random.Generator):
    """Batch indices of ``num_ids`` clusters x ``k`` members (members
    drawn with replacement only where a cluster has fewer than k)."""
    members = [np.flatnonzero(labels == c) for c in range(labels.max() + 1)]
    members = [m for m in members if len(m) >= 2]
    for _ in range(steps):
        picked = rng.choice(len(members), size=num_ids, replace=False)
        yield np.concatenate([
            rng.choice(members[c], size=k, replace=len(members[c]) < k)
            for c in picked
        ])


def _train_step(agg, losses, memory, optimizer, x: torch.Tensor,
                y: torch.Tensor, generator: torch.Generator) -> dict:
    """One optimiser step on the sum of the set losses' ``loss*`` terms;
    returns every term as a float."""
    terms = {}
    for loss in losses:
        kwargs = {}
        if 'generator' in inspect.signature(loss.forward).parameters:
            kwargs['generator'] = generator
        terms.update(loss(agg, x, y, memory, **kwargs))
    total = sum(v for name, v in terms.items() if name.startswith('loss'))
    if optimizer is not None and total.requires_grad:
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    return {name: float(v.detach()) for name, v in terms.items()}


def probe_set_objective(features: torch.Tensor,
                        labels: np.ndarray,
                        true_ids: np.ndarray,
                        aggregator: dict,
                        set_losses: Sequence[dict],
                        steps: int = 500,
                        num_ids: int = 16,
                        k: int = 4,
                        lr: float = 1e-3,
                        floor_ratio: float = 0.5,
                        temperature: float = 0.05,
                        seed: int = 0,
                        eval_every: Optional[int] = None
                        ) -> Dict[str, object]:
    """Train an aggregator with set losses on frozen features; judge its
    weights on held-out clusters.

    Args:
        features (Tensor): (N, D) L2-normalised features.
        labels (ndarray): (N, ) pseudo labels, -1 for outliers.
        true_ids (ndarray): (N, ) true ids (for the judgement only).
        aggregator (dict): aggregator config (``embed_dims`` = D).
        set_losses (Sequence[dict]): set loss configs, as in
            ``RCL(set_losses=...)``.
        steps (int): optimiser steps (Adam). Defaults to 500.
        num_ids (int): pseudo identities per batch. Defaults to 16.
        k (int): members per identity (and per judged set). Defaults to 4.
        lr (float): learning rate. Defaults to 1e-3.
        floor_ratio (float): HPS's floor ratio for the pick rates.
        temperature (float): the memory's temperature. Defaults to 0.05.
        seed (int): seeds the split, the model and the batches.
        eval_every (int, optional): also judge every this many steps.

    Returns:
        dict: ``before`` and ``after`` (:func:`impostor_report` of the
        held-out clusters, untrained and trained), ``curve`` (step, report)
        when ``eval_every``, ``losses`` (mean of each term over the last
        tenth of the steps) and the split sizes.
    """
    features = torch.as_tensor(features).float()
    train_labels, held_labels = split_clusters(labels, seed)
    torch.manual_seed(seed)
    agg = MODELS.build(copy.deepcopy(aggregator))
    losses = torch.nn.ModuleList(
        MODELS.build(copy.deepcopy(cfg)) for cfg in set_losses)
    keep = train_labels >= 0
    memory = ClusterMemory(features.size(1), temperature=temperature)
    lab = torch.as_tensor(train_labels[keep])
    memory.set_prototypes(
        cluster_means(features[torch.as_tensor(keep)], lab,
                      int(lab.max()) + 1))

    def judge():
        return impostor_report(agg, features, held_labels, true_ids,
                               floor_ratio, k=k, seed=seed)

    result = dict(
        train_clusters=int(train_labels.max()) + 1,
        held_out_clusters=int(held_labels.max()) + 1,
        before=judge(),
        curve=[])
    batches = _batches(train_labels, num_ids, k, steps,
                       np.random.default_rng(seed))
    history = _train(agg, losses, memory, features, train_labels, batches,
                     lr, seed, eval_every, judge, result['curve'])
    tail = history[-max(1, len(history) // 10):]
    result['losses'] = {
        name: float(np.mean([h[name] for h in tail]))
        for name in (tail[0] if tail else {})
    }
    result['after'] = judge()
    return result


def _train(agg, losses, memory, features: torch.Tensor,
           train_labels: np.ndarray, batches, lr: float, seed: int,
           eval_every: Optional[int], judge, curve: list) -> list:
    """Adam steps of the aggregator on ``batches`` (sample indices);
    appends ``(step, judge())`` to ``curve`` every ``eval_every`` steps
    and returns the loss terms of every step."""
    params = [p for p in agg.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr) if params else None
    generator = torch.Generator().manual_seed(seed)
    history = []
    agg.train()
    for step, idx in enumerate(batches, 1):
        history.append(
            _train_step(agg, losses, memory, optimizer,
                        features[torch.as_tensor(idx)],
                        torch.as_tensor(train_labels[idx]), generator))
        if eval_every and step % eval_every == 0:
            curve.append((step, judge()))
    return history
