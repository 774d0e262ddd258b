"""Self-attention aggregation of the samples of a cluster (CSA / SAA)."""
import math
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmreid_rcl.registry import MODELS


@MODELS.register_module()
class ClusterAttentionAggregator(BaseModule):
    """Pre-norm multi-head self-attention over sets of features.

    For a set X (n, D) of one cluster's features:
    ``Z = X + W_o MHA(LN(X))``; the attention ``A`` (heads, n, n) tells how
    much each sample is attended to by the others. A sample's weight
    ``w_i`` is the attention it receives, averaged over heads and over the
    set's (valid) queries and normalised to sum 1 over the set. The
    aggregate is ``p = normalise(sum_i w_i Z_i)``. Samples that do not fit
    their cluster receive little attention, so ``p`` is a robust centre.

    Sets of different sizes are batched by padding with a mask. With
    ``zero_init_out`` (default) the output projection starts at zero, so
    at initialisation ``Z = X`` and the module only re-weights samples; the
    attention is still trained, through the weights ``w``.

    Args:
        embed_dims (int): D.
        num_heads (int): attention heads; D must be divisible by it.
            Defaults to 8.
        dropout (float): dropout on the attention and the output.
        qkv_bias (bool): bias in the q, k, v projections.
        pre_norm (bool): LayerNorm before the attention. Defaults to True.
        zero_init_out (bool): start the output projection at zero.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int = 8,
                 dropout: float = 0.0,
                 qkv_bias: bool = True,
                 pre_norm: bool = True,
                 zero_init_out: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims {embed_dims} must be divisible by '
                             f'num_heads {num_heads}')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.norm = nn.LayerNorm(embed_dims) if pre_norm else nn.Identity()
        self.qkv = nn.Linear(embed_dims, 3 * embed_dims, bias=qkv_bias)
        self.out_proj = nn.Linear(embed_dims, embed_dims)
        self.attn_drop = nn.Dropout(dropout)
        self.out_drop = nn.Dropout(dropout)
        self.zero_init_out = zero_init_out
        if zero_init_out:
            nn.init.zeros_(self.out_proj.weight)
            nn.init.zeros_(self.out_proj.bias)

    def forward(self,
                x: torch.Tensor,
                mask: Optional[torch.Tensor] = None,
                query_chunk: Optional[int] = None) -> Dict[str, torch.Tensor]:
        """Aggregate a padded batch of sets.

        Args:
            x (Tensor): (B, n, D) features, padded.
            mask (Tensor, optional): (B, n) bool, True for real samples.
                Every set needs at least one real sample.
            query_chunk (int, optional): process queries in chunks of this
                size, so memory holds (B, heads, chunk, n) attention
                entries instead of (B, heads, n, n): for very large sets.

        Returns:
            dict: ``refined`` (B, n, D) features Z (padding rows are
            zeros), ``weights`` (B, n) received attention (0 on padding,
            summing to 1 per set) and ``aggregate`` (B, D) normalised.
        """
        if x.dim() != 3 or x.size(-1) != self.embed_dims:
            raise ValueError(f'expected (B, n, {self.embed_dims}) sets, got '
                             f'{tuple(x.shape)}')
        batch, num, _ = x.shape
        if mask is None:
            mask = x.new_ones(batch, num, dtype=torch.bool)
        if mask.shape != (batch, num):
            raise ValueError(f'mask must be {(batch, num)}, got '
                             f'{tuple(mask.shape)}')
        counts = mask.sum(1)
        if bool((counts == 0).any()):
            raise ValueError('every set needs at least one sample')
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=-1)
        q, k, v = (t.view(batch, num, self.num_heads,
                          self.head_dims).transpose(1, 2) for t in (q, k, v))
        key_bias = torch.zeros(
            batch, 1, 1, num, dtype=x.dtype, device=x.device)
        key_bias.masked_fill_(~mask[:, None, None, :], float('-inf'))
        query_valid = mask[:, None, :, None].to(x.dtype)
        chunk = num if not query_chunk else max(1, int(query_chunk))
        received = x.new_zeros(batch, self.num_heads, num)
        outs = []
        scale = 1.0 / math.sqrt(self.head_dims)
        for start in range(0, num, chunk):
            stop = min(num, start + chunk)
            scores = q[:, :, start:stop] @ k.transpose(-1, -2) * scale
            attn = torch.softmax(scores + key_bias, dim=-1)
            # Received attention counts only real queries.
            received = received + (attn * query_valid[:, :, start:stop]).sum(
                dim=2)
            outs.append(self.attn_drop(attn) @ v)
        out = torch.cat(outs, dim=2).transpose(1, 2).reshape(
            batch, num, self.embed_dims)
        refined = x + self.out_drop(self.out_proj(out))
        refined = refined * mask[..., None].to(x.dtype)
        weights = received.mean(dim=1) / counts[:, None].to(x.dtype)
        weights = weights * mask.to(x.dtype)
        weights = weights / weights.sum(dim=1, keepdim=True)
        aggregate = F.normalize((weights[..., None] * refined).sum(1), dim=1)
        return dict(refined=refined, weights=weights, aggregate=aggregate)


def group_into_sets(labels: torch.Tensor):
    """Arrange a batch's samples into padded per-label sets.

    Args:
        labels (Tensor): (B, ) labels.

    Returns:
        tuple: ``index`` (S, n_max) long, batch positions of each set's
        members in batch order, padded with 0; ``mask`` (S, n_max) bool;
        ``set_labels`` (S, ) the label of each set (sorted).
    """
    set_labels, inverse, counts = torch.unique(
        labels, return_inverse=True, return_counts=True)
    order = torch.argsort(inverse, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(labels.numel(), device=labels.device) - \
        starts[inverse[order]]
    n_max = int(counts.max()) if counts.numel() else 0
    index = torch.zeros(
        set_labels.numel(), n_max, dtype=torch.long, device=labels.device)
    mask = torch.zeros(
        set_labels.numel(), n_max, dtype=torch.bool, device=labels.device)
    index[inverse[order], rank] = order
    mask[inverse[order], rank] = True
    return index, mask, set_labels
