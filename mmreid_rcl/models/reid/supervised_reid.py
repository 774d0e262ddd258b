"""The supervised re-ID model: backbone, BNNeck, identity head."""
from typing import Dict, List, Tuple

import torch
from torch import nn

from mmreid_rcl.registry import MODELS
from mmreid_rcl.structures import ReIDDataSample
from .base_reid import BaseReID


@MODELS.register_module()
class SupervisedReID(BaseReID):
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

    The arguments are those of :class:`BaseReID`; ``head`` is an
    ``IdentityClassificationHead``.
    """

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
        maps = self.backbone_maps(inputs)
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
