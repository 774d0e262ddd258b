"""The cluster-level contrastive head."""
from typing import Dict, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmreid_rcl.registry import MODELS


@MODELS.register_module()
class ClusterContrastHead(BaseModule):
    """Cross-entropy of normalised features against the cluster memory.

    ``loss = CE(f M^T / tau, pseudo_label)``; after the loss is formed the
    memory moves toward the batch's samples with its update rule.

    Args:
        memory (dict | nn.Module): the cluster memory, e.g.
            ``dict(type='ClusterMemory', feat_dim=2048)``.
        loss_weight (float): weight of the loss. Defaults to 1.0.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 memory: Union[dict, torch.nn.Module],
                 loss_weight: float = 1.0,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.memory = MODELS.build(memory) if isinstance(memory,
                                                         dict) else memory
        self.loss_weight = float(loss_weight)

    def loss(self, feats: torch.Tensor, labels: torch.Tensor,
             **update_kwargs) -> Dict[str, torch.Tensor]:
        """Contrastive loss of a batch, then the memory update.

        Args:
            feats (Tensor): (B, D) L2-normalised features.
            labels (Tensor): (B, ) pseudo labels in ``[0, C)``.
            **update_kwargs: passed to the memory's ``update`` for its
                update rule (e.g. ``epoch``, per-sample attention weights).

        Returns:
            dict: ``loss_cc`` and the batch accuracy ``acc_cc`` (%) of the
            nearest prototype (logged, not optimised).
        """
        # float32 logits also under mixed precision: the memory casts the
        # features up; a memory that does not is cast here.
        logits = self.memory.logits(feats).float()
        loss = F.cross_entropy(logits, labels) * self.loss_weight
        with torch.no_grad():
            acc = (logits.argmax(1) == labels).float().mean() * 100
        self.memory.update(feats, labels, **update_kwargs)
        return dict(loss_cc=loss, acc_cc=acc)
