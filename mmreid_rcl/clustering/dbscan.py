"""DBSCAN on a sparse precomputed distance, with deterministic labels."""
import numpy as np
import scipy.sparse as sp
from sklearn.cluster import DBSCAN

from mmreid_rcl.utils.validation import check_int


def relabel_by_first_member(labels: np.ndarray) -> np.ndarray:
    """Number clusters 0, 1, ... in the order of their smallest member.

    The result depends only on the partition, not on the order an algorithm
    happened to discover the clusters in.

    Args:
        labels (np.ndarray): labels (N,), -1 for outliers.

    Returns:
        np.ndarray: int64 labels (N,), outliers kept at -1.
    """
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full(labels.shape, -1, dtype=np.int64)
    clustered = labels >= 0
    if not clustered.any():
        return out
    uniq, first, inverse = np.unique(
        labels[clustered], return_index=True, return_inverse=True)
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[np.argsort(first, kind='stable')] = np.arange(len(uniq))
    out[clustered] = rank[inverse]
    return out


def _neighbour_graph(distance: sp.spmatrix, eps: float) -> sp.csr_matrix:
    """The entries within ``eps``, each row sorted by distance.

    Only these decide DBSCAN, so dropping the rest gives the same result on
    a far smaller matrix; sorting here spares sklearn its per-row sort.
    """
    graph = sp.csr_matrix(distance)
    n = graph.shape[0]
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(graph.indptr))
    keep = graph.data <= eps
    rows, cols, vals = rows[keep], graph.indices[keep], graph.data[keep]
    order = np.lexsort((vals, rows))
    counts = np.bincount(rows, minlength=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return sp.csr_matrix((vals[order], cols[order], indptr), shape=(n, n))


def check_dbscan_settings(eps: float, min_samples: int) -> None:
    """Check the settings of :func:`dbscan_labels`.

    Raises:
        ValueError: ``eps`` outside (0, 1) or ``min_samples`` not a
            positive int.
    """
    if not 0 < eps < 1:
        raise ValueError(
            f'eps must be in (0, 1): absent entries of the sparse distance '
            f'mean 1.0 and must never be neighbours; got eps={eps}')
    check_int(min_samples, 'min_samples')


def dbscan_labels(distance, eps: float, min_samples: int) -> np.ndarray:
    """DBSCAN labels from a precomputed distance.

    For a sparse ``distance`` (such as :func:`jaccard_distance` returns),
    stored entries are the only candidate neighbours and an absent entry
    counts as "not a neighbour", i.e. as a distance above ``eps``. That is
    the meaning of absent = 1.0 only while ``eps < 1``, hence the check.
    Each sample is its own neighbour (sklearn counts it in
    ``min_samples``).

    Args:
        distance (scipy.sparse matrix | np.ndarray): distances (N, N) in
            [0, 1]; stored zeros of a sparse matrix are neighbours.
        eps (float): neighbourhood radius, ``0 < eps < 1``.
        min_samples (int): neighbours (self included) of a core sample.

    Returns:
        np.ndarray: int64 labels (N,), -1 for outliers, clusters numbered in
        the order of their smallest member index.
    """
    check_dbscan_settings(eps, min_samples)
    shape = getattr(distance, 'shape', None)
    if shape is None or len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(
            f'distance must be a square (N, N) matrix, got shape {shape}')
    if sp.issparse(distance):
        distance = _neighbour_graph(distance, eps)
    else:
        distance = np.asarray(distance)
    labels = DBSCAN(
        eps=eps, min_samples=min_samples,
        metric='precomputed').fit_predict(distance)
    return relabel_by_first_member(labels)
