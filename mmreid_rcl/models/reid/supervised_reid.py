"""The supervised re-ID model: backbone, BNNeck, identity head."""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import nn

from mmreid_rcl.registry import MODELS
from mmreid_rcl.structures import ReIDDataSample


@MODELS.register_module()
class SupervisedReID(BaseModel):
    """Backbone + neck + identity head, trained on the true identities.

    The supervised counterpart of
    :class:`~mmreid_rcl.models.reid.UnsupervisedReID`: the same backbone
    and neck (so that its checkpoint warm-starts an unsupervised run, see
    :class:`~mmreid_rcl.models.reid.WarmStartInit`) and the same features
    for retrieval (``extract_feat``: the neck's output, L2-normalised), so
    evaluation, the inferencer and the tools work unchanged. Training reads
    ``person_id`` of every data sample, which must lie in
    ``[0, head.num_classes)``: train on the train split with
    ``relabel=True`` and draw P x K batches from the true ids
    (``IdentitySampler`` with ``label_key='person_id'``).

    With a neck that ends in a BatchNorm (``ReIDNeck``, the "BNNeck"), the
    head receives the features before it (for the triplet loss) and after
    it (for the classifier); a neck without one gives the same features to
    both.

    Args:
        backbone (dict): backbone config.
        neck (dict): neck config; must return (B, D) features.
        head (dict): head config (``IdentityClassificationHead``).
        data_preprocessor (dict, optional): e.g.
            ``dict(type='ReIDDataPreprocessor')`` (the default).
        channels_last (bool): run the backbone in the channels-last memory
            format (faster on CPUs, same results up to rounding). Defaults
            to False.
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

    # -- features -------------------------------------------------------
    def _backbone_maps(self, inputs: torch.Tensor):
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return self.backbone(inputs)

    def extract_feat(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, D) L2-normalised features."""
        feats = self.neck(self._backbone_maps(inputs))
        return F.normalize(feats, dim=1)

    def neck_features(
            self, inputs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Features before and after the neck's BatchNorm.

        The neck runs unchanged; the input of its ``bn`` module is read on
        the way (a forward hook), so the pooling and checks stay the neck's.

        Args:
            inputs (Tensor): (B, 3, H, W) normalised images.

        Returns:
            tuple[Tensor]: (B, D) features before the BatchNorm and (B, D)
            the neck's output; the same tensor twice when the neck has no
            ``bn`` module.
        """
        maps = self._backbone_maps(inputs)
        bn = getattr(self.neck, 'bn', None)
        if not isinstance(bn, nn.Module):
            feats = self.neck(maps)
            return feats, feats
        captured = []
        handle = bn.register_forward_hook(
            lambda module, args, output: captured.append(args[0]))
        try:
            bn_feats = self.neck(maps)
        finally:
            handle.remove()
        if len(captured) != 1:
            raise RuntimeError(
                f'{type(self.neck).__name__}.bn ran {len(captured)} times in '
                'one forward pass; SupervisedReID expects it once, on the '
                'pooled features')
        return captured[0], bn_feats

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
    def batch_labels(self,
                     data_samples: List[ReIDDataSample]) -> torch.Tensor:
        """The true identities of a batch, checked against the classifier.

        Raises:
            RuntimeError: a sample's ``person_id`` is missing or outside
                ``[0, head.num_classes)``; the message names its image.
        """
        num_classes = int(self.head.num_classes)
        labels = []
        for sample in data_samples:
            pid = sample.metainfo.get('person_id', -1)
            if not 0 <= pid < num_classes:
                raise RuntimeError(
                    f'SupervisedReID trains on the true identities, but '
                    f'{sample.metainfo.get("img_path", "a sample")} has '
                    f'person_id {pid}, outside [0, {num_classes}): train '
                    'on the train split with relabel=True and set '
                    'model.head.num_classes to its number of identities '
                    '(the dataset\'s metainfo num_ids)')
            labels.append(pid)
        return torch.as_tensor(labels, dtype=torch.long)

    def loss(self, inputs: torch.Tensor,
             data_samples: List[ReIDDataSample]) -> Dict[str, torch.Tensor]:
        labels = self.batch_labels(data_samples).to(inputs.device)
        feats, bn_feats = self.neck_features(inputs)
        return self.head.loss(feats, bn_feats, labels)
