"""Ranking a gallery for each query: top-k lists and per-query AP.

Both follow the conventions of :mod:`mmreid_rcl.evaluation.functional`:
distances come from :func:`compute_distance` (ascending = more similar),
ties are broken by gallery index, and under the re-ID protocol gallery
images showing the query's identity under the query's camera are left out.
"""
from typing import Optional, Tuple

import numpy as np

from mmreid_rcl.evaluation.functional import compute_distance, evaluate_rank
from mmreid_rcl.evaluation.functional.rank import ArrayLike, _as_numpy


def _ids(values: ArrayLike, length: Optional[int],
         name: str) -> np.ndarray:
    values = _as_numpy(values, name)
    if values.ndim != 1 or (length is not None and len(values) != length):
        expected = 'N' if length is None else length
        raise ValueError(f'{name} must have shape ({expected}, ), got '
                         f'{values.shape}')
    if not np.issubdtype(values.dtype, np.integer):
        raise TypeError(f'{name} must hold integers, got {values.dtype}')
    return values.astype(np.int64, copy=False)


def protocol_exclusion(q_pids: ArrayLike, g_pids: ArrayLike,
                       q_camids: ArrayLike,
                       g_camids: ArrayLike) -> np.ndarray:
    """Which gallery images the re-ID protocol hides from each query.

    A gallery image is left out of a query's ranking when it shows the
    query's identity *and* was taken by the query's camera, as in
    :func:`evaluate_rank`.

    Args:
        q_pids (np.ndarray): Query identities, shape (Q, ).
        g_pids (np.ndarray): Gallery identities, shape (G, ).
        q_camids (np.ndarray): Query cameras, shape (Q, ).
        g_camids (np.ndarray): Gallery cameras, shape (G, ).

    Returns:
        np.ndarray: Bool mask of shape (Q, G), True where excluded.
    """
    q_pids = _ids(q_pids, None, 'q_pids')
    g_pids = _ids(g_pids, None, 'g_pids')
    q_camids = _ids(q_camids, len(q_pids), 'q_camids')
    g_camids = _ids(g_camids, len(g_pids), 'g_camids')
    return ((q_pids[:, None] == g_pids[None]) &
            (q_camids[:, None] == g_camids[None]))


def rank_distances(distmat: ArrayLike,
                   topk: int,
                   exclude: Optional[np.ndarray] = None
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """The ``topk`` nearest gallery entries of every query.

    Rows are ordered by ascending distance, ties by ascending gallery
    index: the first ``topk`` entries of a stable argsort of each row.
    Only the entries up to each row's ``topk``-th smallest distance are
    sorted (found with ``np.partition``), so the cost stays close to
    linear in the gallery size.

    Args:
        distmat (np.ndarray | Tensor): Distances of shape (Q, G).
        topk (int): Entries kept per query; at most G are returned.
        exclude (np.ndarray, optional): Bool mask of shape (Q, G); True
            entries are never returned (see :func:`protocol_exclusion`).

    Returns:
        tuple[np.ndarray, np.ndarray]: ``indices`` (int64) and
        ``distances`` (float32), both of shape (Q, min(topk, G)). When a
        row has fewer than ``topk`` entries left after ``exclude``, its
        last slots hold index -1 and distance ``inf``.
    """
    distmat = _as_numpy(distmat, 'distmat')
    if distmat.ndim != 2 or 0 in distmat.shape:
        raise ValueError('distmat must be 2-D with at least one query and '
                         f'one gallery entry, got shape {distmat.shape}')
    if isinstance(topk, bool) or not isinstance(
            topk, (int, np.integer)) or topk < 1:
        raise ValueError(f'topk must be a positive int, got {topk!r}')
    dist = distmat.astype(np.float64)
    if np.isnan(dist).any():
        raise ValueError('distmat contains NaN')
    if exclude is not None:
        exclude = np.asarray(exclude, dtype=bool)
        if exclude.shape != dist.shape:
            raise ValueError(f'exclude must have the shape of distmat '
                             f'{dist.shape}, got {exclude.shape}')
        dist[exclude] = np.inf
    num_q, num_g = dist.shape
    k = min(int(topk), num_g)
    # Everything strictly nearer than the k-th smallest value is in the
    # top k; entries equal to it compete by index.
    kth = np.partition(dist, k - 1, axis=1)[:, k - 1]
    rows, cols = np.nonzero(dist <= kth[:, None])
    values = dist[rows, cols]
    order = np.lexsort((cols, values, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    counts = np.bincount(rows, minlength=num_q)
    position = np.arange(len(rows)) - np.repeat(
        np.cumsum(counts) - counts, counts)
    keep = position < k
    indices = cols[keep].reshape(num_q, k).astype(np.int64)
    distances = values[keep].reshape(num_q, k).astype(np.float32)
    if exclude is not None:
        hidden = exclude[np.arange(num_q)[:, None], indices]
        indices[hidden] = -1
        distances[hidden] = np.inf
    return indices, distances


def rank_gallery(query_feats: ArrayLike,
                 gallery_feats: ArrayLike,
                 topk: int = 10,
                 metric: str = 'euclidean',
                 q_pids: Optional[ArrayLike] = None,
                 g_pids: Optional[ArrayLike] = None,
                 q_camids: Optional[ArrayLike] = None,
                 g_camids: Optional[ArrayLike] = None
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """Rank the gallery by feature distance for every query.

    Distances are :func:`compute_distance` of the L2-normalised features
    (``'euclidean'``: squared, ``2 - 2 cos``). With identities and cameras
    of both sides given, the re-ID protocol applies: gallery images of the
    query's identity taken by the query's camera are left out.

    Args:
        query_feats (np.ndarray | Tensor): Shape (Q, D).
        gallery_feats (np.ndarray | Tensor): Shape (G, D).
        topk (int): Entries kept per query. Defaults to 10.
        metric (str): ``'euclidean'`` or ``'cosine'``.
        q_pids, g_pids, q_camids, g_camids (np.ndarray, optional):
            Identities and cameras, all four or none.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``indices`` and ``distances`` of
        shape (Q, min(topk, G)); see :func:`rank_distances`.
    """
    ids = (q_pids, g_pids, q_camids, g_camids)
    given = [x is not None for x in ids]
    if any(given) and not all(given):
        raise ValueError('q_pids, g_pids, q_camids and g_camids must be '
                         'given all together (for the re-ID protocol) or '
                         'not at all')
    distmat = compute_distance(query_feats, gallery_feats, metric=metric)
    exclude = None
    if all(given):
        q_pids = _ids(q_pids, distmat.shape[0], 'q_pids')
        g_pids = _ids(g_pids, distmat.shape[1], 'g_pids')
        exclude = protocol_exclusion(q_pids, g_pids, q_camids, g_camids)
    return rank_distances(distmat, topk, exclude)


def average_precision_per_query(distmat: ArrayLike, q_pids: ArrayLike,
                                g_pids: ArrayLike, q_camids: ArrayLike,
                                g_camids: ArrayLike) -> np.ndarray:
    """The average precision of every query under the re-ID protocol.

    Each row is scored by :func:`evaluate_rank` on its own, so the numbers
    are exactly the per-query terms of the mAP it reports.

    Args:
        distmat (np.ndarray | Tensor): Distances of shape (Q, G).
        q_pids (np.ndarray): Query identities, shape (Q, ).
        g_pids (np.ndarray): Gallery identities, shape (G, ).
        q_camids (np.ndarray): Query cameras, shape (Q, ).
        g_camids (np.ndarray): Gallery cameras, shape (G, ).

    Returns:
        np.ndarray: float64 AP in [0, 1] of shape (Q, ); NaN for queries
        without a match (no gallery image of their identity from another
        camera), which ``evaluate_rank`` skips.
    """
    distmat = _as_numpy(distmat, 'distmat')
    if distmat.ndim != 2:
        raise ValueError('distmat must be 2-D (num_query, num_gallery), got '
                         f'shape {distmat.shape}')
    num_q, num_g = distmat.shape
    q_pids = _ids(q_pids, num_q, 'q_pids')
    g_pids = _ids(g_pids, num_g, 'g_pids')
    q_camids = _ids(q_camids, num_q, 'q_camids')
    g_camids = _ids(g_camids, num_g, 'g_camids')
    ap = np.full(num_q, np.nan)
    for i in range(num_q):
        has_match = np.any((g_pids == q_pids[i]) & (g_camids != q_camids[i]))
        if has_match:
            ap[i] = evaluate_rank(distmat[i:i + 1], q_pids[i:i + 1], g_pids,
                                  q_camids[i:i + 1], g_camids)['mAP']
    return ap
