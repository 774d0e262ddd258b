"""Rules that move the prototypes of a cluster memory after a step.

Each rule takes the memory (C, D), the batch's features (B, D) and their
pseudo labels (B, ) and returns the updated memory as a NEW tensor: the old
one may still be needed by autograd for the step's backward pass.
"""
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


def _pick_per_prototype(score: torch.Tensor, labels: torch.Tensor,
                        largest: bool = True):
    """Per distinct label, the sample with the largest (or smallest) score.

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
                 labels: torch.Tensor, momentum: float,
                 **kwargs) -> torch.Tensor:
        raise NotImplementedError


@TASK_UTILS.register_module()
class MeanMemoryUpdate(BaseMemoryUpdate):
    """Every sample moves its prototype, in batch order.

    Sample after sample, ``M_k = normalise(m M_k + (1 - m) f)``. Samples of
    different prototypes do not interact, so the j-th samples of all
    prototypes are applied together: K vectorised steps for a batch of
    P identities x K instances instead of P*K sequential ones.
    """

    def __call__(self, memory, feats, labels, momentum, **kwargs):
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

    def __call__(self, memory, feats, labels, momentum, **kwargs):
        if labels.numel() == 0:
            return memory.clone()
        sims = (feats * memory[labels]).sum(dim=1)
        rows, picks, _ = _pick_per_prototype(sims, labels, largest=False)
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

    def __call__(self, memory, feats, labels, momentum, **kwargs):
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
        rows, picks, _ = _pick_per_prototype(score, labels)
        return _momentum_step(memory, rows, feats[picks], momentum)


@TASK_UTILS.register_module()
class HPSMemoryUpdate(BaseMemoryUpdate):
    """Hard Positive Sampling: the most dispersed trusted sample updates.

    Per prototype in the batch, among its samples whose attention weight is
    not below their floor (``weights >= floors``, so that a sample the
    attention marks as mislabelled never moves the prototype), the one with
    the largest dispersion ``1 - cos(Z_i, p)`` to its set's aggregate moves
    the prototype: ``M_k = normalise(m M_k + (1 - m) f_hard)``.

    The model computes ``dispersion``, ``weights`` and ``floors`` (the floor
    ratio over the set size, default 0.5 / n) with its aggregator and passes
    them to the memory update.
    """

    def __call__(self, memory, feats, labels, momentum, dispersion=None,
                 weights=None, floors=None, **kwargs):
        if dispersion is None or weights is None or floors is None:
            raise ValueError(
                'HPSMemoryUpdate needs per-sample dispersion, weights and '
                'floors from the model\'s aggregator: configure '
                'model.aggregator (ClusterAttentionAggregator)')
        if labels.numel() == 0:
            return memory.clone()
        eligible = weights >= floors
        score = torch.where(eligible, dispersion,
                            torch.full_like(dispersion, -float('inf')))
        rows, picks, best = _pick_per_prototype(score, labels)
        if bool(torch.isinf(best).any()):
            raise RuntimeError('HPS found a prototype with no sample at or '
                               'above its attention floor')
        return _momentum_step(memory, rows, feats[picks], momentum)


@TASK_UTILS.register_module()
class WarmupMemoryUpdate(BaseMemoryUpdate):
    """One rule for the first epochs, another after them.

    E.g. the mean update while the aggregator is still learning, then HPS::

        update=dict(type='WarmupMemoryUpdate', epochs=4,
                    rule=dict(type='HPSMemoryUpdate'))

    Args:
        rule (dict): the update rule from epoch ``epochs`` on.
        epochs (int): how many epochs (counted from 0, the epoch the
            clustering was made for) use ``warmup_rule``.
        warmup_rule (dict): the rule of the first ``epochs`` epochs.
            Defaults to ``MeanMemoryUpdate``.
    """

    def __init__(self,
                 rule: dict,
                 epochs: int,
                 warmup_rule: dict = dict(type='MeanMemoryUpdate')) -> None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) \
                or epochs < 0:
            raise ValueError('WarmupMemoryUpdate: epochs (memory.update.'
                             f'epochs) must be an integer >= 0, got '
                             f'{epochs!r}')
        self.epochs = int(epochs)
        self.rule = TASK_UTILS.build(rule) if isinstance(rule, dict) else rule
        self.warmup_rule = TASK_UTILS.build(warmup_rule) if isinstance(
            warmup_rule, dict) else warmup_rule

    def __call__(self, memory, feats, labels, momentum, epoch=None,
                 **kwargs):
        if epoch is None:
            raise ValueError(
                'WarmupMemoryUpdate needs the epoch: the model passes it '
                '(UnsupervisedReID.loss) to ClusterMemory.update')
        chosen = self.warmup_rule if epoch < self.epochs else self.rule
        return chosen(memory, feats, labels, momentum, **kwargs)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({type(self.warmup_rule).__name__} '
                f'for {self.epochs} epochs, then {type(self.rule).__name__})')
