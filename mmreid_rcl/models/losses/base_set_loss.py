"""The interface of RCL's set objectives."""
import torch
import torch.nn as nn

from ..utils.device import module_device


class BaseSetLoss(nn.Module):
    """A set objective of RCL (``RCL(set_losses=[...])``).

    Called as ``loss(aggregator, feats, labels, memory)``:

    - ``aggregator`` (nn.Module): for padded sets ``(x, mask)``, (S, n, D)
      and (S, n), returns at least ``weights`` (S, n) and ``aggregate``
      (S, D);
    - ``feats`` (Tensor): (B, D) features, used as given (RCL detaches
      them so that the objective trains the aggregator only);
    - ``labels`` (Tensor): (B, ) pseudo labels; the in-batch samples of
      each label form a set;
    - ``memory`` (ClusterMemory, optional): the cluster memory.

    It returns a dict of named terms; those whose name starts with
    ``loss`` are summed into the training loss, the others are logged.
    """

    @staticmethod
    def aggregate(aggregator: nn.Module, feats: torch.Tensor,
                  index: torch.Tensor, mask: torch.Tensor) -> dict:
        """The aggregator's output for the sets ``feats[index]`` (padding
        rows zeroed by ``mask``)."""
        return aggregator(feats[index] * mask[..., None].to(feats.dtype),
                          mask)

    @staticmethod
    def zero(aggregator: nn.Module) -> torch.Tensor:
        """A zero loss that still reaches every parameter of the
        aggregator (distributed training expects gradients for all); a
        tensor on the aggregator's device also when it has none."""
        start = torch.zeros((), device=module_device(aggregator))
        return sum((p.sum() for p in aggregator.parameters()), start) * 0.0
