"""Robust contrastive learning: cluster contrast with a set aggregator."""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

from mmreid_rcl.registry import MODELS
from mmreid_rcl.structures import ReIDDataSample
from ..memories import (cluster_sample_aggregation, cluster_trust,
                        hard_positive_picks)
from ..necks.cluster_attention_aggregator import group_into_sets
from .unsupervised_reid import UnsupervisedReID

_CSA_KEYS = ('max_attention_elements', )
_HPS_KEYS = ('floor', 'warmup_epochs', 'distrust', 'trust_by')
_TRUST_BY = ('cluster', 'camera')


def _settings(value: Optional[dict], name: str, keys: Sequence[str],
              defaults: dict) -> Optional[dict]:
    """A switch that is None (off) or a dict of settings (on)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f'RCL: {name} must be a dict of settings (on) or '
                        f'None (off), got {value!r}')
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise ValueError(f'RCL: unknown {name} settings {unknown}; known: '
                         f'{list(keys)}')
    return dict(defaults, **value)


@MODELS.register_module()
class RCL(UnsupervisedReID):
    """Robust contrastive learning: cluster contrast with an aggregator.

    The whole of RCL's data flow is here; the backbone, neck, head and
    memory are those of plain cluster contrast (:class:`UnsupervisedReID`).

    - **SAA** (set aggregation training): in every step the in-batch
      samples of each pseudo identity form a set; each loss of
      ``set_losses`` runs the aggregator on the batch's sets (on detached
      features with ``detach``) and adds its terms.
    - **CSA** (``csa``): at every re-clustering each prototype is the
      aggregate of ALL members of its cluster
      (:func:`~mmreid_rcl.models.memories.cluster_sample_aggregation`)
      instead of the memory's own initialisation (the mean).
    - **HPS** (``hps``): after each step, per pseudo identity of the batch,
      the member of largest dispersion ``1 - cos(x_i, p)`` to its set's
      aggregate among those whose weight is at least ``floor / n``
      (:func:`~mmreid_rcl.models.memories.hard_positive_picks`) moves its
      prototype, ``M_k = normalise(m M_k + (1 - m) f)``. With
      ``distrust`` > 0 the images least similar to their cluster's
      prototype at re-clustering (that share of the clustered images,
      :func:`cluster_trust`; with ``trust_by='camera'`` least similar to
      the mean of their cluster's images from their own camera) never
      move a prototype until the next re-clustering: a whole cluster
      judges a member better than the other members of its in-batch set
      can. Before
      ``warmup_epochs`` (counted from the first clustering, epoch 0) and
      with ``hps=None`` the memory's own update rule moves it. In
      distributed runs each rank picks among its own samples and the
      memory gathers the picks.

    Args:
        aggregator (dict): the set aggregator, e.g.
            ``dict(type='ClusterAttentionAggregator', embed_dims=2048)`` or
            ``dict(type='SimilarityAttentionAggregator', embed_dims=2048)``.
        set_losses (list[dict]): the SAA objectives, each a registered
            loss called as ``loss(aggregator, feats, labels, memory)``
            returning a dict of named terms (``SetContrastiveLoss``,
            ``PlantedImpostorLoss``, ``ConsensusAggregateLoss``). Defaults
            to the contrastive set loss alone.
        csa (dict, optional): CSA settings, ``max_attention_elements``
            (default 2**24); None turns CSA off. Defaults to on.
        hps (dict, optional): HPS settings, ``floor`` (a member is trusted
            when its weight is at least ``floor / n`` of its set of n;
            default 0.5), ``warmup_epochs`` (default 0), ``distrust``
            (the share of the clustered images, least similar to their
            cluster's prototype, that HPS never picks; default 0.0) and
            ``trust_by`` (``'cluster'``: similar to the prototype;
            ``'camera'``: to the mean of the cluster's images from the
            same camera, which needs the train set's cameras at every
            re-clustering; default ``'cluster'``); None turns HPS off.
            Defaults to on.
        detach (bool): the set losses see detached features, so that they
            train the aggregator only, not the backbone. Defaults to True.
        **kwargs: the arguments of :class:`UnsupervisedReID`.
    """

    def __init__(self,
                 *args,
                 aggregator: dict,
                 set_losses: Sequence[dict] = (dict(
                     type='SetContrastiveLoss'), ),
                 csa: Optional[dict] = dict(),
                 hps: Optional[dict] = dict(),
                 detach: bool = True,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if aggregator is None:
            raise ValueError('RCL needs an aggregator config, e.g. '
                             "dict(type='ClusterAttentionAggregator', "
                             'embed_dims=2048)')
        self.aggregator = MODELS.build(aggregator) if isinstance(
            aggregator, dict) else aggregator
        if not set_losses:
            raise ValueError('RCL needs at least one set loss (set_losses), '
                             "e.g. [dict(type='SetContrastiveLoss')]")
        self.set_losses = torch.nn.ModuleList(
            MODELS.build(cfg) if isinstance(cfg, dict) else cfg
            for cfg in set_losses)
        self.csa = _settings(csa, 'csa', _CSA_KEYS,
                             dict(max_attention_elements=2**24))
        self.hps = _settings(hps, 'hps', _HPS_KEYS,
                             dict(floor=0.5, warmup_epochs=0, distrust=0.0,
                                  trust_by='cluster'))
        if self.hps is not None:
            floor, warmup = self.hps['floor'], self.hps['warmup_epochs']
            distrust = self.hps['distrust']
            if isinstance(distrust, bool) or not isinstance(
                    distrust, (int, float)) or not 0.0 <= distrust < 1.0:
                raise ValueError('RCL: hps distrust must be a share in '
                                 f'[0, 1), got {distrust!r}')
            if self.hps['trust_by'] not in _TRUST_BY:
                raise ValueError(f'RCL: hps trust_by must be one of '
                                 f"{list(_TRUST_BY)}, got "
                                 f"{self.hps['trust_by']!r}")
            if isinstance(floor, bool) or not isinstance(
                    floor, (int, float)) or not 0.0 <= floor <= 1.0:
                raise ValueError(f'RCL: hps floor must be in [0, 1], got '
                                 f'{floor!r}')
            if isinstance(warmup, bool) or not isinstance(warmup, int) or \
                    warmup < 0:
                raise ValueError('RCL: hps warmup_epochs must be an integer '
                                 f'>= 0, got {warmup!r}')
        self.detach = bool(detach)
        # Per train image (sample_idx order): whether HPS may pick it in
        # this clustering (``hps.distrust``); empty when every image may.
        self.register_buffer(
            'hps_trusted', torch.zeros(0, dtype=torch.bool), persistent=True)

    @property
    def hps_floor(self) -> Optional[float]:
        """HPS's floor ratio (a member is trusted at ``floor / n``); None
        when HPS is off."""
        return None if self.hps is None else float(self.hps['floor'])

    @property
    def hps_distrust(self) -> float:
        """The share of the clustered images HPS never picks (0 when HPS
        is off)."""
        return 0.0 if self.hps is None else float(self.hps['distrust'])

    @property
    def needs_cameras(self) -> bool:
        """Whether :meth:`set_clusters` needs the train set's cameras
        (``hps.trust_by='camera'``)."""
        return self.hps_distrust > 0 and self.hps['trust_by'] == 'camera'

    def hps_active(self, epoch: int) -> bool:
        """Whether HPS moves the prototypes in ``epoch`` (counted from the
        first clustering)."""
        return self.hps is not None and epoch >= self.hps['warmup_epochs']

    # -- training ---------------------------------------------------------
    def loss(self, inputs: torch.Tensor,
             data_samples: List[ReIDDataSample]) -> Dict[str, torch.Tensor]:
        feats = self.extract_feat(inputs)
        labels = self.batch_pseudo_labels(data_samples)
        # The set losses read the memory before this step moves it.
        losses = self.set_loss(feats, labels)
        use_hps = self.hps_active(int(self.cluster_epoch))
        losses.update(self.head.loss(feats, labels,
                                     update_memory=not use_hps))
        if use_hps:
            picks = self.hard_positives(feats.detach(), labels,
                                        self.batch_trusted(data_samples))
            self.memory.update(feats[picks], labels[picks])
        return losses

    def set_loss(self, feats: torch.Tensor,
                 labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The terms of every set loss for a batch.

        Args:
            feats (Tensor): (B, D) normalised features.
            labels (Tensor): (B, ) pseudo labels.
        """
        x = (feats.detach() if self.detach else feats).float()
        losses = {}
        for loss in self.set_losses:
            terms = loss(self.aggregator, x, labels, self.memory)
            clash = sorted(set(terms) & set(losses))
            if clash:
                raise ValueError(f'RCL: set losses both return {clash}')
            losses.update(terms)
        return losses

    @torch.no_grad()
    def set_statistics(self, feats: torch.Tensor,
                       labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Per sample, in batch order: ``weights`` (its weight in its
        in-batch set), ``floors`` (``floor / n``, the default floor 0.5
        when HPS is off) and ``dispersion`` (``1 - cos(x_i, p)`` of its
        refined feature to the set's aggregate)."""
        index, mask, _ = group_into_sets(labels)
        x = feats.float()[index] * mask[..., None]
        out = self.aggregator(x, mask)
        refined = F.normalize(out['refined'].float(), dim=-1)
        aggregate = out['aggregate'].float()
        dispersion = 1.0 - (refined * aggregate[:, None]).sum(-1)
        ratio = 0.5 if self.hps is None else float(self.hps['floor'])
        floors = (ratio / mask.sum(1, keepdim=True).float()).expand_as(
            dispersion)
        flat = index[mask]
        zeros = x.new_zeros(labels.numel())
        return dict(
            weights=zeros.index_copy(0, flat, out['weights'].float()[mask]),
            floors=zeros.index_copy(0, flat, floors[mask]),
            dispersion=zeros.index_copy(0, flat, dispersion[mask]))

    @torch.no_grad()
    def hard_positives(self,
                       feats: torch.Tensor,
                       labels: torch.Tensor,
                       trusted: Optional[torch.Tensor] = None
                       ) -> torch.Tensor:
        """HPS's pick of each pseudo identity of the batch: (P', ) batch
        indices, in increasing label order; ``trusted`` (B, ) bool, when
        given, excludes the others (a label with no trusted member gets no
        pick)."""
        stats = self.set_statistics(feats, labels)
        floors = stats['floors']
        if trusted is not None:
            floors = floors.masked_fill(~trusted.to(floors.device),
                                        float('inf'))
        return hard_positive_picks(labels, stats['weights'], floors,
                                   stats['dispersion'])

    def batch_trusted(self, data_samples: List[ReIDDataSample]
                      ) -> Optional[torch.Tensor]:
        """Whether HPS may pick each sample of a batch in this clustering
        (``hps.distrust``); None when it may pick any."""
        if self.hps_trusted.numel() == 0:
            return None
        idx = torch.as_tensor([s.sample_idx for s in data_samples],
                              device=self.hps_trusted.device)
        return self.hps_trusted[idx]

    # -- clustering state -------------------------------------------------
    @torch.no_grad()
    def set_clusters(self,
                     features: torch.Tensor,
                     labels: torch.Tensor,
                     epoch: int,
                     cameras: Optional[torch.Tensor] = None) -> None:
        """Install a new clustering (:class:`UnsupervisedReID`) and, with
        ``hps.distrust`` > 0, which images HPS may pick in it
        (:func:`cluster_trust` against the new prototypes, or with
        ``cameras`` (N, ) per camera when :attr:`needs_cameras`)."""
        if self.needs_cameras and cameras is None:
            raise ValueError("RCL: hps trust_by='camera' needs the cameras "
                             'of the train images at every re-clustering '
                             '(set_clusters(..., cameras=...))')
        super().set_clusters(features, labels, epoch)
        share = self.hps_distrust
        if share > 0:
            device = self.pseudo_labels.device
            self.hps_trusted = cluster_trust(
                features.to(device), self.pseudo_labels,
                self.memory.prototypes, share,
                cameras=torch.as_tensor(cameras, device=device)
                if self.needs_cameras else None)
        else:
            self.hps_trusted = self.hps_trusted.new_zeros(0)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        saved = state_dict.get(prefix + 'hps_trusted')
        if saved is not None and saved.shape != self.hps_trusted.shape:
            self.hps_trusted = self.hps_trusted.new_empty(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def install_prototypes(self, features: torch.Tensor,
                           labels: torch.Tensor) -> None:
        """With CSA, the aggregates of all members of each cluster; else the
        memory's own initialisation."""
        if self.csa is None:
            return super().install_prototypes(features, labels)
        self.memory.set_prototypes(
            cluster_sample_aggregation(self.aggregator, features, labels,
                                       **self.csa))
