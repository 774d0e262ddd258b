"""How the prototypes of a cluster memory are initialised at re-clustering."""
import torch
import torch.nn.functional as F

from mmreid_rcl.registry import TASK_UTILS
from ..utils.device import module_device


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

    def __call__(self, features: torch.Tensor, labels: torch.Tensor,
                 **kwargs) -> torch.Tensor:
        """Args: features (N, D), labels (N, ). Returns (C, D)."""
        num_clusters = check_cluster_labels(features, labels)
        return cluster_means(features.float(), labels, num_clusters)


@torch.no_grad()
def cluster_sample_aggregation(aggregator,
                               features: torch.Tensor,
                               labels: torch.Tensor,
                               max_attention_elements: int = 2**24
                               ) -> torch.Tensor:
    """Cluster Sample Aggregation (CSA): prototype = aggregate of ALL the
    members of its cluster.

    The aggregator (``ClusterAttentionAggregator`` or
    ``SimilarityAttentionAggregator``) runs in evaluation mode, without
    gradient. Clusters are processed in batches of similar size, padded, so
    that a batch holds at most ``max_attention_elements`` attention entries
    (batch x heads x n x n); a cluster too large for that on its own is
    processed with its queries in chunks, so memory stays bounded by the
    same number (and by heads x chunk x n for the largest cluster) whatever
    the cluster sizes.

    Args:
        aggregator (nn.Module): returns ``aggregate`` (B, D) for padded
            sets ``(x, mask, query_chunk=...)``; its ``num_heads`` sizes
            the batches.
        features (Tensor): (N, D) features of the clustered samples.
        labels (Tensor): (N, ) contiguous cluster ids 0..C-1.
        max_attention_elements (int): bound on attention entries held at
            once. Defaults to 2**24 (64 MB in float32).

    Returns:
        Tensor: (C, D) normalised aggregates, on ``features``' device.
    """
    num_clusters = check_cluster_labels(features, labels)
    was_training = aggregator.training
    aggregator.eval()
    device = module_device(aggregator, features.device)
    features = features.float()
    order = torch.argsort(labels, stable=True)
    counts = torch.bincount(labels, minlength=num_clusters)
    starts = (torch.cumsum(counts, 0) - counts).tolist()
    sizes = counts.tolist()
    heads = aggregator.num_heads
    by_size = sorted(range(num_clusters), key=lambda c: sizes[c])
    protos = features.new_zeros(num_clusters, features.size(1))
    budget = int(max_attention_elements)
    i = 0
    try:
        while i < num_clusters:
            # Grow the batch while the padded attention fits the budget
            # (clusters are sorted by size, so the last one sets n_max).
            j = i + 1
            while j < num_clusters and \
                    (j + 1 - i) * heads * sizes[by_size[j]]**2 <= budget:
                j += 1
            batch = by_size[i:j]
            n_max = sizes[batch[-1]]
            x = features.new_zeros(len(batch), n_max, features.size(1))
            mask = torch.zeros(len(batch), n_max, dtype=torch.bool)
            for row, c in enumerate(batch):
                members = order[starts[c]:starts[c] + sizes[c]]
                x[row, :sizes[c]] = features[members]
                mask[row, :sizes[c]] = True
            chunk = None
            if heads * n_max * n_max > budget:
                chunk = max(1, budget // (heads * n_max))
            out = aggregator(
                x.to(device), mask.to(device), query_chunk=chunk)
            protos[torch.as_tensor(batch)] = out['aggregate'].float().to(
                protos.device)
            i = j
    finally:
        aggregator.train(was_training)
    return F.normalize(protos, dim=1)
