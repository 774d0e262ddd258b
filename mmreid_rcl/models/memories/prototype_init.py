"""How the prototypes of a cluster memory are initialised at re-clustering."""
import torch
import torch.nn.functional as F

from mmreid_rcl.registry import TASK_UTILS


def cluster_means(features: torch.Tensor, labels: torch.Tensor,
                  num_clusters: int) -> torch.Tensor:
    """L2-normalised mean feature of every cluster.

    Args:
        features (Tensor): (N, D) features; outliers must be removed.
        labels (Tensor): (N, ) cluster index of each feature, in
            ``[0, num_clusters)``.
        num_clusters (int): C.

    Returns:
        Tensor: (C, D) normalised means.
    """
    sums = features.new_zeros(num_clusters, features.size(1))
    sums.index_add_(0, labels, features)
    return F.normalize(sums, dim=1)


def check_cluster_labels(features: torch.Tensor,
                         labels: torch.Tensor) -> int:
    """Validate (features, labels) and return the number of clusters."""
    if features.dim() != 2 or labels.dim() != 1 or \
            features.size(0) != labels.size(0):
        raise ValueError('expected features (N, D) and labels (N, ), got '
                         f'{tuple(features.shape)} and {tuple(labels.shape)}')
    if labels.numel() == 0:
        raise ValueError('cannot build prototypes from zero samples')
    if int(labels.min()) < 0:
        raise ValueError('labels must be >= 0: drop outliers (-1) before '
                         'building prototypes')
    num_clusters = int(labels.max()) + 1
    counts = torch.bincount(labels, minlength=num_clusters)
    if bool((counts == 0).any()):
        empty = torch.nonzero(counts == 0).flatten()[:5].tolist()
        raise ValueError('cluster labels must be contiguous 0..C-1; clusters '
                         f'{empty} have no member')
    return num_clusters


@TASK_UTILS.register_module()
class MeanPrototypeInit:
    """Prototype = normalised mean of the cluster's features (the baseline)."""

    def __call__(self, features: torch.Tensor,
                 labels: torch.Tensor) -> torch.Tensor:
        """Args: features (N, D), labels (N, ). Returns (C, D)."""
        num_clusters = check_cluster_labels(features, labels)
        return cluster_means(features.float(), labels, num_clusters)
