"""Quality of pseudo labels against true identities (diagnostics only)."""
import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix


def _purity(labels: np.ndarray, true_ids: np.ndarray) -> float:
    """Share of samples carrying the majority true id of their cluster."""
    table = contingency_matrix(labels, true_ids, sparse=True).tocsr()
    return float(table.max(axis=1).sum() / len(labels))


def cluster_quality(pseudo_labels, true_ids) -> dict:
    """Compare pseudo labels with the true identities.

    Outliers (label -1) are left out of ``purity``, ``nmi`` and ``ari``,
    which score how the clustered samples were grouped; how many samples
    were left out is ``num_outliers``. ``ari_all`` scores every sample,
    each outlier counted as a cluster of its own, so discarding many
    samples lowers it. With no clustered sample the first three are 0.

    Args:
        pseudo_labels (array-like): int labels (N,), -1 for outliers.
        true_ids (array-like): true identity of each sample (N,).

    Returns:
        dict: ``num_clusters``, ``num_outliers`` (int), ``purity``, ``nmi``,
        ``ari``, ``ari_all`` (float).
    """
    labels = np.asarray(pseudo_labels).astype(np.int64, copy=False)
    true_ids = np.asarray(true_ids)
    if labels.ndim != 1 or labels.shape != true_ids.shape:
        raise ValueError(
            'pseudo_labels and true_ids must be 1-D of the same length, got '
            f'shapes {labels.shape} and {true_ids.shape}')
    clustered = labels >= 0
    num_clusters = len(np.unique(labels[clustered]))
    result = dict(
        num_clusters=int(num_clusters),
        num_outliers=int((~clustered).sum()),
        purity=0.0,
        nmi=0.0,
        ari=0.0)
    if clustered.any():
        lab, ids = labels[clustered], true_ids[clustered]
        result.update(
            purity=_purity(lab, ids),
            nmi=float(normalized_mutual_info_score(ids, lab)),
            ari=float(adjusted_rand_score(ids, lab)))
    # Outliers as singletons: fresh labels above every cluster label.
    singletons = labels.copy()
    singletons[~clustered] = labels.max(initial=-1) + 1 + np.arange(
        (~clustered).sum())
    result['ari_all'] = float(adjusted_rand_score(true_ids, singletons))
    return result
