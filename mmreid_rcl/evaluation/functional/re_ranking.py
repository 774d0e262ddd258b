"""k-reciprocal re-ranking of a query-gallery distance matrix.

Zhong et al., "Re-ranking Person Re-identification with k-reciprocal
Encoding", CVPR 2017.
"""
from typing import Tuple

import numpy as np

from mmreid_rcl.clustering.k_reciprocal import (cross_jaccard,
                                                encode_neighbour_lists)
from mmreid_rcl.utils.validation import ArrayLike, as_array, check_int
from .rank import rank_distances

# Upper bound on the entries of the (rows x all samples) blocks processed
# at once, so memory stays bounded besides the inputs and the output.
_BLOCK_ENTRIES = 1 << 22


def _check_square(dist: np.ndarray, size: int, name: str,
                  what: str) -> None:
    if dist.shape != (size, size):
        raise ValueError(f'{name} must have shape ({size}, {size}) '
                         f'({what}), got {dist.shape}')


class _JointDistance:
    """Rows of the joint (query + gallery) distance matrix, on demand.

    The joint matrix ``[[q_q, q_g], [q_g.T, g_g]]`` has (Q + G)**2 entries
    and is never materialised: rows are assembled a block at a time.
    """

    def __init__(self, q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray):
        self.q_g, self.q_q, self.g_g = q_g, q_q, g_g
        self.num_query = q_q.shape[0]
        self.num_all = q_q.shape[0] + g_g.shape[0]

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop``, shape (stop - start, Q + G)."""
        nq = self.num_query
        parts = []
        if start < nq:
            s, e = start, min(stop, nq)
            parts.append(np.concatenate([self.q_q[s:e], self.q_g[s:e]], 1))
        if stop > nq:
            s, e = max(start, nq) - nq, stop - nq
            parts.append(
                np.concatenate([self.q_g[:, s:e].T, self.g_g[s:e]], 1))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Entries at (rows[i], cols[i]), shape (len(rows), )."""
        nq = self.num_query
        out = np.empty(len(rows), dtype=np.float32)
        row_q, col_q = rows < nq, cols < nq
        for mask, src, r, c in (
                (row_q & col_q, self.q_q, rows, cols),
                (row_q & ~col_q, self.q_g, rows, cols - nq),
                (~row_q & col_q, self.q_g, cols, rows - nq),
                (~row_q & ~col_q, self.g_g, rows - nq, cols - nq)):
            out[mask] = src[r[mask], c[mask]]
        return out


def _normalised_ranks(joint: _JointDistance,
                      num_ranks: int) -> Tuple[np.ndarray, np.ndarray]:
    """Row maxima of the joint matrix and its neighbour lists, ranked after
    each row is divided by its maximum.

    The division may merge close values into ties; the ranks see the same
    divided values as the weights of the encoding.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``row_max`` float32 (Q + G, ) (1
        for an all-zero row) and ``ranks`` int64 (Q + G, num_ranks), ties
        by index.
    """
    num_all = joint.num_all
    block_rows = max(1, _BLOCK_ENTRIES // num_all)
    ranks = np.empty((num_all, num_ranks), dtype=np.int64)
    row_max = np.empty(num_all, dtype=np.float32)
    for start in range(0, num_all, block_rows):
        block = joint.rows(start, start + block_rows)
        stop = start + len(block)
        row_max[start:stop] = block.max(axis=1)
        # Keeps an all-zero row at zero instead of dividing by zero.
        row_max[start:stop][row_max[start:stop] <= 0] = 1
        ranks[start:stop] = rank_distances(
            block / row_max[start:stop, None], num_ranks)[0]
    return row_max, ranks


def re_ranking(q_g_dist: ArrayLike,
               q_q_dist: ArrayLike,
               g_g_dist: ArrayLike,
               k1: int = 20,
               k2: int = 6,
               lambda_value: float = 0.3) -> np.ndarray:
    """k-reciprocal re-ranking (Zhong et al., CVPR 2017).

    Over all query and gallery samples: the k-reciprocal neighbours R(p)
    of each sample p (k = k1) are extended by R'(c) (k = round(k1 / 2)) of
    each c in R(p) that shares more than 2/3 of R'(c) with R(p); p is
    encoded as a vector V_p over samples with weights ``exp(-d(p, .))``
    on that set, normalised to sum 1, and averaged over the k2 nearest
    neighbours of p (query expansion, skipped when k2 = 1). The result is
    ``(1 - lambda_value) * d_J + lambda_value * q_g_dist``, with d_J the
    Jaccard distance ``1 - sum min(V_p, V_g) / sum max(V_p, V_g)``.

    Conventions (the reference code of the paper differs here):

    - the distances are used as given, not squared again (pass e.g. the
      squared euclidean distance of :func:`compute_distance`);
    - as there, each row of the joint distance matrix is divided by its
      maximum for the weights, but the final mixture uses ``q_g_dist``
      itself, as in the paper, so ``lambda_value=1`` returns it unchanged;
    - neighbour ranks follow a stable sort (ties broken by index).

    The k-reciprocal sets, the encoding and the Jaccard distance are
    those of :mod:`mmreid_rcl.clustering.k_reciprocal`, fed with the
    neighbour lists of the joint (query + gallery) matrix, ``k1 + 1``
    long as in the paper's code. Computation is blocked and sparse: the
    joint (Q + G)**2 matrix is never materialised (its rows are read once,
    for a partial sort), the encodings are sparse matrices and the Jaccard
    distance only visits pairs of samples that share a non-zero column.

    Args:
        q_g_dist (np.ndarray | Tensor): Shape (Q, G).
        q_q_dist (np.ndarray | Tensor): Symmetric, shape (Q, Q).
        g_g_dist (np.ndarray | Tensor): Symmetric, shape (G, G).
        k1 (int): Size of the k-reciprocal neighbourhood.
        k2 (int): Size of the neighbourhood for query expansion.
        lambda_value (float): Weight of the original distance, in [0, 1].

    Returns:
        np.ndarray: float32 re-ranked distances of shape (Q, G).
    """
    q_g = as_array(q_g_dist, 'q_g_dist')
    q_q = as_array(q_q_dist, 'q_q_dist')
    g_g = as_array(g_g_dist, 'g_g_dist')
    if q_g.ndim != 2 or 0 in q_g.shape:
        raise ValueError('q_g_dist must be a non-empty 2-D (num_query, '
                         f'num_gallery) matrix, got shape {q_g.shape}')
    num_q, num_g = q_g.shape
    _check_square(q_q, num_q, 'q_q_dist', 'query x query')
    _check_square(g_g, num_g, 'g_g_dist', 'gallery x gallery')
    k1, k2 = check_int(k1, 'k1'), check_int(k2, 'k2')
    if not 0 <= lambda_value <= 1:
        raise ValueError(
            f'lambda_value must be in [0, 1], got {lambda_value}')
    q_g, q_q, g_g = (x.astype(np.float32, copy=False) for x in (q_g, q_q, g_g))
    for name, x in (('q_g_dist', q_g), ('q_q_dist', q_q), ('g_g_dist',
                                                           g_g)):
        # NaN propagates through max, so two reductions catch all.
        if not (np.isfinite(x.max()) and np.isfinite(x.min())):
            raise ValueError(f'{name} contains NaN or infinite values')

    joint = _JointDistance(q_g, q_q, g_g)
    num_ranks = min(max(k1 + 1, k2), joint.num_all)
    row_max, ranks = _normalised_ranks(joint, num_ranks)
    # The weights see the divided distances the ranks were taken from; in
    # float32, as the distances are.
    encoding = encode_neighbour_lists(
        ranks, k1, k2, lambda rows, cols: joint.at(rows, cols) / row_max[rows])
    del ranks
    out = np.empty((num_q, num_g), dtype=np.float32)
    for start, stop, jaccard in cross_jaccard(encoding[:num_q],
                                              encoding[num_q:],
                                              _BLOCK_ENTRIES):
        out[start:stop] = (1 - lambda_value) * jaccard + \
            lambda_value * q_g[start:stop]
    return out
