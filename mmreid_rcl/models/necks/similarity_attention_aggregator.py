"""Aggregation of a cluster's samples weighted by their mutual similarity."""
import math
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmreid_rcl.registry import MODELS


@MODELS.register_module()
class SimilarityAttentionAggregator(BaseModule):
    """Scores each member of a set by how well it fits the others.

    For a set X (n, D) of one cluster's features the score of member i is

    ``s_i = mean_{j != i} x_i^T W x_j + g(x_i, c_i)``

    with ``W = I + (U V^T + V U^T) / 2`` a learned low-rank correction of
    the cosine similarity (``x`` are the L2-normalised features), ``c_i``
    the mean of the OTHER members and ``g`` a small MLP on
    ``[x_i - c_i, x_i * c_i]``. The weights are a masked softmax of the
    scores over the set, ``w = softmax(s / T)`` with a learned temperature
    ``T``, and the aggregate is ``p = normalise(sum_i w_i x_i)``.

    ``U`` and the MLP's last layer start at zero, so an untrained module
    gives exactly the similarity weights ``softmax(mean_sim / T0)``: what
    plain cosine similarity sees of a member that does not fit its set
    (the member least similar to the others of a 4-member set is its
    impostor 75 % of the time on CUHK03). Training only has to correct
    them. Unlike :class:`ClusterAttentionAggregator`, the weight of a
    member is its own score, not the attention it receives, and the
    features are not refined (``refined`` is the input).

    With ``sink=True`` the softmax has one more slot, a *sink* whose
    score ``b`` is the mean member score over all the sets of the call
    (the P sets of a training batch; plus ``sink_offset``):
    ``w_i = exp(s_i / T) / (exp(b / T) + sum_j exp(s_j / T))``. The
    weights of a set then sum to less than 1, and by how much says how
    well its members fit together compared with the other sets: plain
    per-set weights are the same for a set of four strangers as for four
    views of one person, while with the sink the strangers all get small
    weights. The order of the members in a set and the aggregate's
    direction are those of the plain softmax; HPS's floor (``floor / n``)
    then trusts only members that fit their set better than the typical
    member of the batch fits its own. The level is measured on the sets
    being judged (augmented views in training, clean ones in a
    diagnostic), not carried over from other calls; a call with a single
    set compares it with itself.

    Because ``W`` is linear, the mean similarity to the others is
    ``x_i^T W (S - x_i) / (n - 1)`` with ``S`` the set's sum: memory grows
    with ``sets * n * D``, never with ``n^2``.

    Args:
        embed_dims (int): D.
        rank (int): rank of the learned similarity correction; 0 keeps
            the plain cosine similarity. Defaults to 0: on CUHK03
            features of a supervised MobileNetV2 a rank-16 correction
            trained on planted impostors lost 0.01-0.02 impostor AUC on
            held-out clusters, while it helps where a nuisance direction
            (e.g. camera) dominates (tests/test_models/
            test_impostor_learning.py).
        mlp_hidden (int): hidden width of the correction ``g``; 0 turns
            it off. Defaults to 64.
        temperature (float): initial softmax temperature ``T0``. Defaults
            to 0.1.
        learn_temperature (bool): train ``T``. Defaults to True.
        min_temperature (float): ``T`` is kept at or above this, so that
            a loss that keeps sharpening the weights cannot blow up the
            logits. Defaults to 0.01.
        sink (bool): add the sink slot. Defaults to False.
        sink_offset (float): added to the sink's level (the mean member
            score). Defaults to 0.
        init_cfg (dict, optional): mmengine init config.
    """

    # cluster_sample_aggregation sizes its batches by heads * n^2; the one
    # score per member needs far less, so one "head" keeps its budget safe.
    num_heads = 1

    def __init__(self,
                 embed_dims: int,
                 rank: int = 0,
                 mlp_hidden: int = 64,
                 temperature: float = 0.1,
                 learn_temperature: bool = True,
                 min_temperature: float = 0.01,
                 sink: bool = False,
                 sink_offset: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if embed_dims < 1 or rank < 0 or mlp_hidden < 0:
            raise ValueError(
                'SimilarityAttentionAggregator: embed_dims must be >= 1 and '
                f'rank, mlp_hidden >= 0, got embed_dims={embed_dims}, '
                f'rank={rank}, mlp_hidden={mlp_hidden}')
        if not 0 < min_temperature <= temperature:
            raise ValueError(
                'SimilarityAttentionAggregator: expected 0 < '
                f'min_temperature <= temperature, got min_temperature='
                f'{min_temperature}, temperature={temperature}')
        if not isinstance(sink, bool) or isinstance(
                sink_offset, bool) or not isinstance(sink_offset,
                                                     (int, float)):
            raise ValueError(
                'SimilarityAttentionAggregator: sink must be True or False '
                f'and sink_offset a number, got sink={sink!r}, '
                f'sink_offset={sink_offset!r}')
        self.embed_dims = embed_dims
        self.sink = sink
        self.sink_offset = float(sink_offset)
        self.rank = rank
        self.mlp_hidden = mlp_hidden
        self.min_temperature = float(min_temperature)
        log_t = torch.tensor(math.log(temperature))
        if learn_temperature:
            self.log_temperature = nn.Parameter(log_t)
        else:
            self.register_buffer('log_temperature', log_t)
        if rank > 0:
            # U = 0 makes W = I; V random so that U gets a gradient.
            self.sim_u = nn.Parameter(torch.zeros(embed_dims, rank))
            self.sim_v = nn.Parameter(
                torch.randn(embed_dims, rank) / math.sqrt(embed_dims))
        if mlp_hidden > 0:
            self.mlp = nn.Sequential(
                nn.Linear(2 * embed_dims, mlp_hidden), nn.ReLU(inplace=True),
                nn.Linear(mlp_hidden, 1))
            nn.init.zeros_(self.mlp[2].weight)
            nn.init.zeros_(self.mlp[2].bias)

    @property
    def temperature(self) -> torch.Tensor:
        """The current softmax temperature T (a 0-dim tensor)."""
        return self.log_temperature.exp().clamp(min=self.min_temperature)

    def _member_scores(self, x: torch.Tensor, others: torch.Tensor,
                       num_others: torch.Tensor) -> torch.Tensor:
        """Scores of members ``x`` (B, m, D) given the sums of the OTHER
        members of their sets ``others`` (B, m, D) and their counts
        (B, 1), clamped at 1."""
        mutual = (x * others).sum(-1)
        if self.rank > 0:
            xu, xv = x @ self.sim_u, x @ self.sim_v
            ou, ov = others @ self.sim_u, others @ self.sim_v
            mutual = mutual + 0.5 * ((xu * ov).sum(-1) + (xv * ou).sum(-1))
        mutual = mutual / num_others
        if self.mlp_hidden > 0:
            context = others / num_others[..., None]
            feats = torch.cat([x - context, x * context], dim=-1)
            mutual = mutual + self.mlp(feats).squeeze(-1)
        return mutual

    def forward(self,
                x: torch.Tensor,
                mask: Optional[torch.Tensor] = None,
                query_chunk: Optional[int] = None) -> Dict[str, torch.Tensor]:
        """Score and aggregate a padded batch of sets.

        Args:
            x (Tensor): (B, n, D) features, padded; they are L2-normalised
                here.
            mask (Tensor, optional): (B, n) bool, True for real samples.
                Every set needs at least one real sample.
            query_chunk (int, optional): score the members in chunks of
                this size, so that the correction ``g`` holds (B, chunk,
                2D) inputs at once: for very large sets.

        Returns:
            dict: ``scores`` (B, n) per-member scores ``s`` (0 on padding;
            a lone member scores 0), ``weights`` (B, n) the softmax of
            ``s / T`` (0 on padding, summing to 1 per set), ``refined``
            (B, n, D) the normalised inputs (padding rows zero) and
            ``aggregate`` (B, D) normalised.
        """
        if x.dim() != 3 or x.size(-1) != self.embed_dims:
            raise ValueError(
                f'SimilarityAttentionAggregator: expected (B, n, '
                f'{self.embed_dims}) sets, got {tuple(x.shape)}')
        batch, num, _ = x.shape
        if mask is None:
            mask = x.new_ones(batch, num, dtype=torch.bool)
        if mask.shape != (batch, num):
            raise ValueError(
                f'SimilarityAttentionAggregator: mask must be '
                f'{(batch, num)}, got {tuple(mask.shape)}')
        counts = mask.sum(1)
        if bool((counts == 0).any()):
            raise ValueError(
                'SimilarityAttentionAggregator: every set needs at least '
                'one sample (a mask row is all False)')
        valid = mask[..., None].to(x.dtype)
        x = F.normalize(x, dim=-1) * valid
        total = x.sum(1, keepdim=True)
        num_others = (counts[:, None] - 1).clamp(min=1).to(x.dtype)
        chunk = num if not query_chunk else max(1, int(query_chunk))
        scores = torch.cat([
            self._member_scores(x[:, s:s + chunk],
                                total - x[:, s:s + chunk], num_others)
            for s in range(0, num, chunk)
        ], dim=1)
        # A lone member has no others to be compared with.
        lone = counts < 2
        scores = scores.masked_fill(~mask | lone[:, None], 0.0)
        logits = (scores / self.temperature).masked_fill(
            ~mask, float('-inf'))
        if self.sink:
            level = self._sink_level(scores, mask & ~lone[:, None])
            sink = (level / self.temperature).expand(batch, 1)
            # A lone member keeps weight 1: there is nothing to judge it by.
            sink = sink.masked_fill(lone[:, None], float('-inf'))
            weights = torch.softmax(torch.cat([logits, sink], 1), dim=1)
            weights = weights[:, :num]
        else:
            weights = torch.softmax(logits, dim=1)
        aggregate = F.normalize((weights[..., None] * x).sum(1), dim=1)
        return dict(
            scores=scores, weights=weights, refined=x, aggregate=aggregate)

    def _sink_level(self, scores: torch.Tensor,
                    judged: torch.Tensor) -> torch.Tensor:
        """The sink's score: the mean of ``scores`` over the ``judged``
        members (0 when there are none) plus ``sink_offset``, without
        gradient."""
        with torch.no_grad():
            judged_scores = scores.detach()[judged]
            level = (judged_scores.mean()
                     if judged_scores.numel() else scores.new_zeros(()))
        return level + self.sink_offset

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, rank={self.rank}, '
                f'mlp_hidden={self.mlp_hidden}, '
                f'temperature={self.temperature.item():.4g}, '
                f'sink={self.sink}')
