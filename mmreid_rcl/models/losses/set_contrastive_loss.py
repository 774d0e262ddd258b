"""SAA objective: each set's aggregate against the cluster memory."""
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmreid_rcl.registry import MODELS
from ..necks.cluster_attention_aggregator import group_into_sets
from .base_set_loss import BaseSetLoss


@MODELS.register_module()
class SetContrastiveLoss(BaseSetLoss):
    """The contrastive loss of the batch's set aggregates (SAA training).

    The in-batch samples of each pseudo identity form a set; the
    aggregator's aggregate ``p`` of each set goes through the cluster
    contrastive loss against the memory:
    ``loss_saa = CE(p M^T / tau, k) * loss_weight``. Its lowest point is
    the plain mean of a set when the prototype is itself a running mean of
    its cluster, so it gives an aggregator little reason to mark
    impostors; :class:`PlantedImpostorLoss` and
    :class:`ConsensusAggregateLoss` do.

    Args:
        loss_weight (float): weight of ``loss_saa``. Defaults to 1.0.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = float(loss_weight)

    def forward(self,
                aggregator: nn.Module,
                feats: torch.Tensor,
                labels: torch.Tensor,
                memory: Optional[nn.Module] = None
                ) -> Dict[str, torch.Tensor]:
        """Aggregate the batch's sets (see :class:`BaseSetLoss`) and score
        them against the memory, which is required; returns
        ``loss_saa``."""
        if memory is None:
            raise ValueError('SetContrastiveLoss needs the cluster memory '
                             '(memory=...)')
        index, mask, set_labels = group_into_sets(labels)
        out = self.aggregate(aggregator, feats, index, mask)
        # float32 logits also when the aggregator ran in lower precision.
        logits = memory.logits(out['aggregate'].float()).float()
        return dict(
            loss_saa=F.cross_entropy(logits, set_labels) * self.loss_weight)
