"""The unsupervised re-ID model: backbone, neck, cluster-contrast head."""
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel

from mmreid_rcl.registry import MODELS
from mmreid_rcl.structures import ReIDDataSample
from ..necks.cluster_attention_aggregator import group_into_sets


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
        aggregator (dict, optional): a ``ClusterAttentionAggregator``: turns
            on RCL's parts. In each step the in-batch samples of every
            pseudo identity form a set; the set aggregates are pushed toward
            their prototypes by the contrastive loss ``loss_saa`` (this
            trains the aggregator, SAA), and each sample's attention weight,
            floor and dispersion are handed to the memory update (for
            ``HPSMemoryUpdate``) and the aggregator to the prototype
            initialiser (for ``CSAPrototypeInit``). None (default): plain
            cluster contrast.
        saa_loss_weight (float): weight of ``loss_saa``. Defaults to 1.0.
        saa_detach (bool): feed the aggregator detached features, so that
            ``loss_saa`` trains the aggregator only, not the backbone.
            Defaults to True.
        hps_floor (float): a sample is trusted by HPS when its attention
            weight is at least ``hps_floor / n`` of its set of n. Defaults
            to 0.5.
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
                 aggregator: Optional[dict] = None,
                 saa_loss_weight: float = 1.0,
                 saa_detach: bool = True,
                 hps_floor: float = 0.5,
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
        self.aggregator = MODELS.build(aggregator) if isinstance(
            aggregator, dict) else aggregator
        self.saa_loss_weight = float(saa_loss_weight)
        self.saa_detach = bool(saa_detach)
        if not 0.0 <= hps_floor <= 1.0:
            raise ValueError(f'hps_floor must be in [0, 1], got {hps_floor}')
        self.hps_floor = float(hps_floor)
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
        # The epoch of the clustering, for update rules that change with it.
        epoch = int(self.cluster_epoch)
        if self.aggregator is None:
            return self.head.loss(feats, labels, epoch=epoch)
        # The set loss reads the memory before the head's update moves it.
        saa_losses, per_sample = self.saa_loss(feats, labels)
        losses = self.head.loss(feats, labels, epoch=epoch, **per_sample)
        losses.update(saa_losses)
        return losses

    def saa_loss(self, feats: torch.Tensor, labels: torch.Tensor):
        """Aggregate the batch's per-identity sets; their loss and stats.

        Args:
            feats (Tensor): (B, D) normalised features.
            labels (Tensor): (B, ) pseudo labels.

        Returns:
            tuple: ``dict(loss_saa=...)`` and per-sample tensors in batch
            order: ``weights`` (attention weight in its set), ``floors``
            (``hps_floor / n``) and ``dispersion`` (``1 - cos(Z_i, p)``).
        """
        index, mask, set_labels = group_into_sets(labels)
        x = (feats.detach() if self.saa_detach else feats).float()
        out = self.aggregator(x[index] * mask[..., None], mask)
        # Under autocast the aggregator's outputs may come in mixed
        # dtypes; the loss and the per-sample statistics are float32.
        out = {k: v.float() for k, v in out.items()}
        memory = self.head.memory
        logits = memory.logits(out['aggregate']).float()
        loss = F.cross_entropy(logits, set_labels) * self.saa_loss_weight
        with torch.no_grad():
            refined = F.normalize(out['refined'].detach(), dim=-1)
            dispersion = 1.0 - (refined *
                                out['aggregate'].detach()[:, None]).sum(-1)
            sizes = mask.sum(1, keepdim=True).float()
            floors = (self.hps_floor / sizes).expand_as(dispersion)
            flat = index[mask]
            zeros = x.new_zeros(labels.numel())
            per_sample = dict(
                weights=zeros.index_copy(0, flat,
                                         out['weights'].detach()[mask]),
                floors=zeros.index_copy(0, flat, floors[mask]),
                dispersion=zeros.index_copy(0, flat, dispersion[mask]))
        return dict(loss_saa=loss), per_sample

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
        extra = {} if self.aggregator is None else dict(
            aggregator=self.aggregator)
        self.head.memory.initialise(features[keep].to(device),
                                    labels[keep].to(device), **extra)
        self.pseudo_labels = labels.to(device)
        self.cluster_epoch.fill_(int(epoch))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        saved = state_dict.get(prefix + 'pseudo_labels')
        if saved is not None and saved.shape != self.pseudo_labels.shape:
            self.pseudo_labels = self.pseudo_labels.new_empty(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


@MODELS.register_module()
class RCL(UnsupervisedReID):
    """Robust contrastive learning: cluster contrast with an aggregator.

    The same model as :class:`UnsupervisedReID` with the aggregator
    required; which of CSA (``CSAPrototypeInit``) and HPS
    (``HPSMemoryUpdate``) are on is chosen in the memory's config.
    """

    def __init__(self, *args, aggregator: dict, **kwargs) -> None:
        if aggregator is None:
            raise ValueError('RCL needs an aggregator (a '
                             'ClusterAttentionAggregator config)')
        super().__init__(*args, aggregator=aggregator, **kwargs)
