"""Cross-entropy against label-smoothed identity targets."""
import torch
import torch.nn.functional as F
from torch import nn

from mmreid_rcl.registry import MODELS


def label_smooth_cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                               epsilon: float = 0.1) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` against smoothed one-hot targets.

    The target of a sample of class ``y`` among ``C`` classes is
    ``q = (1 - epsilon) * onehot(y) + epsilon / C``, and the loss is
    ``-sum_c q_c log softmax(logits)_c`` averaged over the batch (Szegedy et
    al., "Rethinking the Inception architecture", CVPR 2016; used for re-ID
    by Luo et al., "Bag of tricks and a strong baseline", CVPRW 2019).

    Args:
        logits (Tensor): (B, C) class scores.
        labels (Tensor): (B, ) int64 classes in ``[0, C)``.
        epsilon (float): smoothing, in ``[0, 1)``; 0 is the plain
            cross-entropy. Defaults to 0.1.

    Returns:
        Tensor: the scalar mean loss.
    """
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise ValueError('label_smooth_cross_entropy expects logits (B, C) '
                         f'and labels (B, ), got {tuple(logits.shape)} and '
                         f'{tuple(labels.shape)}')
    log_probs = F.log_softmax(logits, dim=1)
    nll = -log_probs.gather(1, labels[:, None]).squeeze(1)
    uniform = -log_probs.mean(dim=1)
    return ((1.0 - epsilon) * nll + epsilon * uniform).mean()


@MODELS.register_module()
class LabelSmoothCrossEntropyLoss(nn.Module):
    """Identity-classification loss with label smoothing.

    See :func:`label_smooth_cross_entropy`. Smoothing keeps the classifier
    from growing over-confident on the few images of each training
    identity, which helps features generalise to unseen test identities.

    Args:
        epsilon (float): smoothing, in ``[0, 1)``. Defaults to 0.1.
        loss_weight (float): weight of the loss. Defaults to 1.0.
    """

    def __init__(self, epsilon: float = 0.1, loss_weight: float = 1.0):
        super().__init__()
        if not 0.0 <= epsilon < 1.0:
            raise ValueError('LabelSmoothCrossEntropyLoss epsilon must be '
                             f'in [0, 1), got {epsilon!r}')
        self.epsilon = float(epsilon)
        self.loss_weight = float(loss_weight)

    def forward(self, logits: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        """The weighted loss of (B, C) ``logits`` and (B, ) ``labels``."""
        return self.loss_weight * label_smooth_cross_entropy(
            logits, labels, self.epsilon)

    def extra_repr(self) -> str:
        return f'epsilon={self.epsilon}, loss_weight={self.loss_weight}'
