"""The unsupervised re-ID model: backbone, neck, cluster-contrast head."""
from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel

from mmreid_rcl.registry import MODELS
from mmreid_rcl.structures import ReIDDataSample


@MODELS.register_module()
class UnsupervisedReID(BaseModel):
    """Backbone + neck + cluster-contrast head, trained on pseudo labels.

    The pseudo labels of the whole train split are model state (a buffer
    indexed by ``sample_idx``), not dataset state: the dataset is serialised
    and data-loader workers hold stale copies of it. With them the model
    saves ``cluster_epoch``, the epoch the labels were made for, so that a
    run resumed in the middle of an epoch keeps its clustering.

    Args:
        backbone (dict): backbone config.
        neck (dict): neck config; must return (B, D) features.
        head (dict): head config (``ClusterContrastHead``).
        data_preprocessor (dict, optional): e.g.
            ``dict(type='ReIDDataPreprocessor')``.
        channels_last (bool): run the backbone in the channels-last memory
            format, much faster on CPUs for depthwise convolutions (about
            1.6x training and 3x inference for MobileNetV2 here) with the
            same results up to float rounding. Defaults to False.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 data_preprocessor: Optional[dict] = None,
                 channels_last: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='ReIDDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.backbone.to(memory_format=torch.channels_last)
        self.neck = MODELS.build(neck)
        self.head = MODELS.build(head)
        self.register_buffer('pseudo_labels',
                             torch.zeros(0, dtype=torch.long))
        self.register_buffer('cluster_epoch',
                             torch.tensor(-1, dtype=torch.long))

    # -- features -------------------------------------------------------
    def extract_feat(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, D) L2-normalised features.

        The features are float32 also when the backbone runs in reduced
        precision (autocast): they are normalised in float32.
        """
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        feats = self.neck(self.backbone(inputs))
        return F.normalize(feats.float(), dim=1)

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[ReIDDataSample]] = None,
                mode: str = 'tensor'):
        if mode == 'tensor':
            return self.extract_feat(inputs)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise ValueError(f'invalid mode "{mode}": expected tensor, loss or '
                         'predict')

    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[List[ReIDDataSample]] = None
                ) -> List[ReIDDataSample]:
        feats = self.extract_feat(inputs)
        if data_samples is None:
            data_samples = [ReIDDataSample() for _ in range(feats.size(0))]
        for sample, feat in zip(data_samples, feats):
            sample.features = feat.detach()
        return data_samples

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
