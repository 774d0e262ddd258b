"""The unsupervised re-ID model: backbone, neck, cluster-contrast head."""
from typing import Dict, List

import torch
import torch.nn as nn

from mmreid_rcl.registry import MODELS
from mmreid_rcl.structures import ReIDDataSample
from .base_reid import BaseReID


@MODELS.register_module()
class UnsupervisedReID(BaseReID):
    """Backbone + neck + cluster-contrast head, trained on pseudo labels.

    The pseudo labels of the whole train split are model state (a buffer
    indexed by ``sample_idx``), not dataset state: the dataset is serialised
    and data-loader workers hold stale copies of it. With them the model
    saves ``cluster_epoch``, the epoch the labels were made for, so that a
    run resumed in the middle of an epoch keeps its clustering.

    The arguments are those of :class:`BaseReID`; ``head`` is a
    ``ClusterContrastHead``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.register_buffer('pseudo_labels',
                             torch.zeros(0, dtype=torch.long))
        self.register_buffer('cluster_epoch',
                             torch.tensor(-1, dtype=torch.long))

    # -- training ---------------------------------------------------------
    def batch_pseudo_labels(
            self, data_samples: List[ReIDDataSample]) -> torch.Tensor:
        """Pseudo labels of a batch, looked up by ``sample_idx``."""
        if self.pseudo_labels.numel() == 0:
            raise RuntimeError(
                'the model has no pseudo labels: training needs the '
                're-clustering hook (ReClusterHook) in custom_hooks')
        idx = torch.as_tensor([s.sample_idx for s in data_samples],
                              device=self.pseudo_labels.device)
        if int(idx.max()) >= self.pseudo_labels.numel():
            raise RuntimeError(
                f'sample_idx {int(idx.max())} is outside the pseudo labels '
                f'of {self.pseudo_labels.numel()} training images')
        labels = self.pseudo_labels[idx]
        if bool((labels < 0).any()):
            raise RuntimeError(
                'a batch holds outliers (pseudo label -1): the train sampler '
                'must draw from clustered samples only (IdentitySampler with '
                'labels set by ReClusterHook)')
        return labels

    def loss(self, inputs: torch.Tensor,
             data_samples: List[ReIDDataSample]) -> Dict[str, torch.Tensor]:
        feats = self.extract_feat(inputs)
        labels = self.batch_pseudo_labels(data_samples)
        return self.head.loss(feats, labels)

    @property
    def memory(self) -> nn.Module:
        """The cluster memory (the head's)."""
        return self.head.memory

    # -- clustering state -------------------------------------------------
    @torch.no_grad()
    def set_clusters(self, features: torch.Tensor, labels: torch.Tensor,
                     epoch: int) -> None:
        """Install a new clustering of the train split.

        Args:
            features (Tensor): (N, D) features of all train images, in
                ``sample_idx`` order.
            labels (Tensor): (N, ) pseudo labels, -1 for outliers, clusters
                numbered 0..C-1.
            epoch (int): the epoch the clustering is for.
        """
        labels = labels.to(torch.long)
        keep = labels >= 0
        device = self.pseudo_labels.device
        self.install_prototypes(features[keep].to(device),
                                labels[keep].to(device))
        self.pseudo_labels = labels.to(device)
        self.cluster_epoch.fill_(int(epoch))

    def install_prototypes(self, features: torch.Tensor,
                           labels: torch.Tensor) -> None:
        """The memory's prototypes for a new clustering: here the memory's
        own ``prototype_init`` (the normalised cluster means)."""
        self.memory.initialise(features, labels)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        saved = state_dict.get(prefix + 'pseudo_labels')
        if saved is not None and saved.shape != self.pseudo_labels.shape:
            self.pseudo_labels = self.pseudo_labels.new_empty(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
