"""The supervised head: identity classification plus a triplet loss."""
from typing import Dict, Optional, Union

import torch
from mmengine.model import BaseModule
from torch import nn

from mmreid_rcl.registry import MODELS


def _build(cfg: Union[dict, nn.Module, None], **defaults):
    if cfg is None or isinstance(cfg, nn.Module):
        return cfg
    cfg = dict(cfg)
    for key, value in defaults.items():
        cfg.setdefault(key, value)
    return MODELS.build(cfg)


@MODELS.register_module()
class IdentityClassificationHead(BaseModule):
    """Identity classifier and triplet loss in the BNNeck arrangement.

    The "strong baseline" of Luo et al. ("Bag of tricks and a strong
    baseline for deep person re-identification", CVPRW 2019): the pooled
    feature ``f`` goes through a BatchNorm layer (the neck's, see
    :class:`~mmreid_rcl.models.necks.ReIDNeck`) to give ``f_bn``; the
    triplet loss acts on ``f``, where Euclidean distances are free to
    shape, and the classifier on ``f_bn``, whose normalised channels suit a
    softmax over identities. Retrieval uses ``f_bn``.

    Args:
        in_channels (int): feature dimension D.
        num_classes (int): training identities C; the labels must lie in
            ``[0, C)`` (the train split relabelled, ``relabel=True``).
        classifier (dict | nn.Module): the classifier, built with
            ``in_channels`` and ``num_classes`` filled in:
            ``dict(type='LinearClassifier')`` (default) or
            ``dict(type='CosineClassifier', scale=16.0)``.
        loss_cls (dict | nn.Module, optional): the classification loss on
            the logits. Defaults to
            ``dict(type='LabelSmoothCrossEntropyLoss', epsilon=0.1)``; None
            turns it off.
        loss_triplet (dict | nn.Module, optional): the metric loss on the
            features before the BatchNorm. Defaults to
            ``dict(type='TripletLoss', margin=0.3)``; None turns it off.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(
            self,
            in_channels: int,
            num_classes: int,
            classifier: Union[dict, nn.Module] = dict(
                type='LinearClassifier'),
            loss_cls: Optional[Union[dict, nn.Module]] = dict(
                type='LabelSmoothCrossEntropyLoss', epsilon=0.1),
            loss_triplet: Optional[Union[dict, nn.Module]] = dict(
                type='TripletLoss', margin=0.3),
            init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if loss_cls is None and loss_triplet is None:
            raise ValueError('IdentityClassificationHead needs loss_cls, '
                             'loss_triplet or both; both are None')
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.classifier = _build(
            classifier, in_channels=in_channels, num_classes=num_classes)
        if getattr(self.classifier, 'num_classes', num_classes) != \
                num_classes:
            raise ValueError(
                'IdentityClassificationHead num_classes '
                f'({num_classes}) differs from its classifier\'s '
                f'({self.classifier.num_classes})')
        self.loss_cls = _build(loss_cls)
        self.loss_triplet = _build(loss_triplet)

    def forward(self, bn_feats: torch.Tensor) -> torch.Tensor:
        """(B, D) batch-normalised features -> (B, C) identity logits."""
        return self.classifier(bn_feats)

    def loss(self, feats: torch.Tensor, bn_feats: torch.Tensor,
             labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The losses of a P x K batch.

        Args:
            feats (Tensor): (B, D) features before the BatchNorm (for the
                triplet loss).
            bn_feats (Tensor): (B, D) features after it (for the
                classifier).
            labels (Tensor): (B, ) identities in ``[0, num_classes)``.

        Returns:
            dict: ``loss_cls`` and ``loss_triplet`` (those configured) and
            ``acc_cls``, the batch's top-1 accuracy in % (logged, not
            optimised).
        """
        losses = {}
        logits = self.classifier(bn_feats)
        if self.loss_cls is not None:
            losses['loss_cls'] = self.loss_cls(logits, labels)
        if self.loss_triplet is not None:
            losses['loss_triplet'] = self.loss_triplet(feats, labels)
        with torch.no_grad():
            losses['acc_cls'] = (
                logits.argmax(1) == labels).float().mean() * 100
        return losses
