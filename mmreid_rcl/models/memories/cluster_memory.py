"""The memory bank of cluster prototypes."""
from typing import Optional, Union

import torch
import torch.nn as nn
from mmengine.dist import all_gather, get_world_size

from mmreid_rcl.registry import MODELS, TASK_UTILS


def full_precision(device: torch.device):
    """A context with autocast off on ``device``.

    Under mixed precision (``AmpOptimWrapper``) matrix products run in
    float16 / bfloat16; the prototypes, their update and the logits
    ``f M^T / tau`` (a small temperature amplifies rounding) stay float32.
    """
    return torch.autocast(device_type=device.type, enabled=False)


def gather_rows(feats: torch.Tensor, labels: torch.Tensor):
    """The (B_r, D) features and (B_r, ) labels of every rank, in rank
    order, where B_r may differ between ranks (RCL's hard positive
    sampling moves the memory with one pick per trusted pseudo label).

    ``all_gather`` needs one shape on all ranks (nccl reads past a shorter
    tensor or hangs): the rows are padded to the longest rank's, gathered
    and cut back.

    Args:
        feats (Tensor): (B_r, D) this rank's features.
        labels (Tensor): (B_r, ) their labels.

    Returns:
        tuple[Tensor, Tensor]: (sum B_r, D) features and (sum B_r, )
        labels, on the inputs' device.
    """
    size = torch.tensor([labels.numel()], device=labels.device)
    sizes = [int(s) for s in all_gather(size)]
    pad = max(sizes) - labels.numel()
    feats = torch.cat([feats, feats.new_zeros(pad, feats.size(1))])
    labels = torch.cat([labels, labels.new_full((pad, ), -1)])
    feats = torch.cat([g[:n] for g, n in zip(all_gather(feats), sizes)])
    labels = torch.cat([g[:n] for g, n in zip(all_gather(labels), sizes)])
    return feats, labels


def _build(cfg_or_obj, registry):
    return registry.build(cfg_or_obj) if isinstance(cfg_or_obj,
                                                    dict) else cfg_or_obj


@MODELS.register_module()
class ClusterMemory(nn.Module):
    """Cluster prototypes for the cluster-level contrastive loss.

    The prototypes are a buffer (C, D): no gradient flows into them; they
    are reset at every re-clustering by ``prototype_init`` and moved after
    every step by ``update``. C changes from epoch to epoch, so loading a
    checkpoint resizes the buffer to the saved shape. The prototypes are
    float32 and the logits and updates are computed in float32 also under
    mixed precision (features are cast up, autocast is off inside).

    Args:
        feat_dim (int): D.
        temperature (float): tau of ``logits = f M^T / tau``.
        momentum (float): m of ``M_k = m M_k + (1 - m) f``.
        update (dict): the update rule, e.g. ``dict(type='MeanMemoryUpdate')``
            or ``dict(type='HardMemoryUpdate')``.
        prototype_init (dict): how prototypes are built from a clustering,
            e.g. ``dict(type='MeanPrototypeInit')``.
        gather (bool): update with the samples of every rank in distributed
            runs (all ranks then hold identical memories). Defaults to True.
    """

    def __init__(self,
                 feat_dim: int,
                 temperature: float = 0.05,
                 momentum: float = 0.1,
                 update: Union[dict, object] = dict(type='MeanMemoryUpdate'),
                 prototype_init: Union[dict, object] = dict(
                     type='MeanPrototypeInit'),
                 gather: bool = True) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f'momentum must be in [0, 1), got {momentum}')
        self.feat_dim = int(feat_dim)
        self.temperature = float(temperature)
        self.momentum = float(momentum)
        self.updater = _build(update, TASK_UTILS)
        self.initialiser = _build(prototype_init, TASK_UTILS)
        self.gather = gather
        self.register_buffer('prototypes', torch.zeros(0, self.feat_dim))

    @property
    def num_clusters(self) -> int:
        return self.prototypes.size(0)

    @torch.no_grad()
    def initialise(self, features: torch.Tensor,
                   labels: torch.Tensor) -> None:
        """Rebuild the prototypes from a clustering with ``prototype_init``.

        Args:
            features (Tensor): (N, D) normalised features of clustered
                samples (outliers removed).
            labels (Tensor): (N, ) contiguous cluster ids 0..C-1.
        """
        with full_precision(self.prototypes.device):
            protos = self.initialiser(
                features.to(self.prototypes.device),
                labels.to(self.prototypes.device))
        self.set_prototypes(protos)

    @torch.no_grad()
    def set_prototypes(self, prototypes: torch.Tensor) -> None:
        """Install prototypes made elsewhere (e.g. RCL's cluster sample
        aggregation), (C, D), normalised."""
        if prototypes.dim() != 2 or prototypes.size(1) != self.feat_dim:
            raise ValueError(f'prototypes of shape '
                             f'{tuple(prototypes.shape)}, expected (C, '
                             f'{self.feat_dim})')
        self.prototypes = prototypes.to(
            self.prototypes.device, self.prototypes.dtype).contiguous()

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, D) normalised features -> (B, C) logits ``f M^T / tau``.

        In the prototypes' dtype (float32) whatever the features' dtype.
        """
        if self.num_clusters == 0:
            raise RuntimeError('the cluster memory is empty: prototypes are '
                               'set at re-clustering, before the first epoch')
        with full_precision(feats.device):
            return feats.to(self.prototypes.dtype).matmul(
                self.prototypes.t()) / self.temperature

    @torch.no_grad()
    def update(self, feats: torch.Tensor, labels: torch.Tensor) -> None:
        """Move the prototypes of the batch toward its samples with the
        update rule.

        Args:
            feats (Tensor): (B, D) normalised features (detached inside).
            labels (Tensor): (B, ) pseudo labels.
        """
        # float32 before gathering: some backends (gloo) have no bfloat16.
        feats = feats.detach().to(self.prototypes.dtype)
        if self.gather and get_world_size() > 1:
            feats, labels = gather_rows(feats, labels)
        with full_precision(self.prototypes.device):
            new = self.updater(self.prototypes, feats, labels, self.momentum)
        # A new tensor, not an in-place write: autograd may still hold the
        # old prototypes for this step's backward pass.
        self.prototypes = new

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        key = prefix + 'prototypes'
        saved: Optional[torch.Tensor] = state_dict.get(key)
        if saved is not None and saved.shape != self.prototypes.shape:
            if saved.dim() != 2 or saved.size(1) != self.feat_dim:
                error_msgs.append(
                    f'{key}: checkpoint has shape {tuple(saved.shape)}, '
                    f'expected (C, {self.feat_dim})')
                return
            self.prototypes = self.prototypes.new_empty(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def extra_repr(self) -> str:
        return (f'feat_dim={self.feat_dim}, clusters={self.num_clusters}, '
                f'temperature={self.temperature}, momentum={self.momentum}, '
                f'update={type(self.updater).__name__}, '
                f'prototype_init={type(self.initialiser).__name__}')
