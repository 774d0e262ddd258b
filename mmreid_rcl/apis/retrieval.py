"""Ranking a gallery by feature distance for each query.

The distances and the ranking are those of
:mod:`mmreid_rcl.evaluation.functional`:
distances come from :func:`compute_distance` (ascending = more similar),
ties are broken by gallery index, and under the re-ID protocol gallery
images showing the query's identity under the query's camera are left out.
"""
from typing import Optional, Tuple

import numpy as np

from mmreid_rcl.evaluation.functional import (compute_distance,
                                              protocol_exclusion,
                                              rank_distances)
from mmreid_rcl.utils.validation import ArrayLike


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
        exclude = protocol_exclusion(q_pids, g_pids, q_camids, g_camids,
                                     distmat.shape)
    return rank_distances(distmat, topk, exclude)
