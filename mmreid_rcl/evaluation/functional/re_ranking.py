"""k-reciprocal re-ranking of a query-gallery distance matrix.

Zhong et al., "Re-ranking Person Re-identification with k-reciprocal
Encoding", CVPR 2017.
"""
from typing import Tuple

import numpy as np
import scipy.sparse as sp

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


def _reciprocal(ranks: np.ndarray, k: int,
                block_rows: int) -> Tuple[np.ndarray, np.ndarray]:
    """k-reciprocal neighbours of every sample.

    Args:
        ranks (np.ndarray): Nearest neighbours in rank order, shape
            (N, >= k + 1) (or (N, N) when N <= k).
        k (int): Neighbourhood size; the k + 1 nearest are taken, the
            sample itself included.
        block_rows (int): Rows handled at once.

    Returns:
        tuple: ``(neighbours, is_reciprocal)``, both of shape (N, k'),
        k' = min(k + 1, N): the nearest neighbours of each sample and
        whether the sample is among their own k + 1 nearest, too.
    """
    forward = ranks[:, :k + 1]
    is_reciprocal = np.empty(forward.shape, dtype=bool)
    for start in range(0, len(ranks), block_rows):
        stop = start + block_rows
        backward = forward[forward[start:stop]]
        self_idx = np.arange(start, start + len(backward))
        is_reciprocal[start:stop] = (
            backward == self_idx[:, None, None]).any(axis=2)
    return forward, is_reciprocal


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

    Computation is blocked and sparse: the joint (Q + G)**2 matrix is
    never materialised (its rows are read once, for a partial sort), the
    encodings are sparse matrices and the Jaccard distance only visits
    pairs of samples that share a non-zero column.

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
    num_all = joint.num_all
    block_rows = max(1, _BLOCK_ENTRIES // num_all)
    k1_half = int(np.around(k1 / 2.))
    num_ranks = min(max(k1 + 1, k2), num_all)

    # Pass 1: row maxima and nearest neighbours of the joint matrix. Ranks
    # are taken after the division, which may merge close values into
    # ties, as the weights are computed from the divided values too.
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

    # Pass 2: the expanded k-reciprocal set of each sample and its weights.
    forward, is_recip = _reciprocal(ranks, k1, block_rows)
    half, is_recip_half = _reciprocal(ranks, k1_half, block_rows)
    v_rows, v_cols, v_vals = [], [], []
    for start in range(0, num_all, block_rows):
        stop = min(start + block_rows, num_all)
        recip = np.where(is_recip[start:stop], forward[start:stop], -1)
        # Candidates c in R(p) with their half-size sets R'(c).
        cand = forward[start:stop]
        cand_half = np.where(is_recip_half[cand], half[cand], -1)
        half_size = is_recip_half[cand].sum(axis=2)
        shared = ((cand_half[..., None] == recip[:, None, None, :])
                  & (cand_half[..., None] >= 0)).any(axis=3).sum(axis=2)
        accept = is_recip[start:stop] & (shared > 2. / 3. * half_size)
        member = np.zeros((stop - start, num_all), dtype=bool)
        local = np.arange(stop - start)
        rows = np.broadcast_to(local[:, None], recip.shape)
        member[rows[recip >= 0], recip[recip >= 0]] = True
        added = np.where(accept[..., None], cand_half, -1)
        rows = np.broadcast_to(local[:, None, None], added.shape)
        member[rows[added >= 0], added[added >= 0]] = True
        rows, cols = np.divmod(np.flatnonzero(member), num_all)
        rows += start
        weights = np.exp(-joint.at(rows, cols) / row_max[rows])
        weights /= np.bincount(
            rows - start, weights=weights,
            minlength=stop - start).astype(np.float32)[rows - start]
        v_rows.append(rows)
        v_cols.append(cols)
        v_vals.append(weights)
    encoding = sp.csr_matrix(
        (np.concatenate(v_vals),
         (np.concatenate(v_rows), np.concatenate(v_cols))),
        shape=(num_all, num_all),
        dtype=np.float32)
    del v_rows, v_cols, v_vals

    if k2 != 1:
        # Query expansion: average the encodings of the k2 nearest.
        num_expand = min(k2, num_ranks)
        expand = sp.csr_matrix(
            (np.full(num_all * num_expand, 1. / num_expand, np.float32),
             ranks[:, :num_expand].ravel(),
             np.arange(0, num_all * num_expand + 1, num_expand)),
            shape=(num_all, num_all))
        encoding = (expand @ encoding).tocsr()

    # Jaccard distance of each query to each gallery sample. min(a, b) is
    # non-zero only where both encodings are, so every shared column k
    # pairs the queries and gallery samples with V[., k] > 0.
    query_enc = encoding[:num_q]
    q_rows = np.repeat(np.arange(num_q), np.diff(query_enc.indptr))
    gallery_enc = encoding[num_q:].tocsc()
    col_start = gallery_enc.indptr[:-1]
    col_count = np.diff(gallery_enc.indptr)
    out = np.empty((num_q, num_g), dtype=np.float32)
    q_block = max(1, _BLOCK_ENTRIES // num_g)
    for start in range(0, num_q, q_block):
        stop = min(start + q_block, num_q)
        lo, hi = query_enc.indptr[start], query_enc.indptr[stop]
        k = query_enc.indices[lo:hi]
        counts = col_count[k]
        # Entry e of a query's column k meets the gallery entries
        # col_start[k] ... col_start[k] + counts[e] - 1 of that column.
        pos = np.arange(int(counts.sum())) + np.repeat(
            col_start[k] - (np.cumsum(counts) - counts), counts)
        mins = np.minimum(
            np.repeat(query_enc.data[lo:hi], counts), gallery_enc.data[pos])
        pair = np.repeat((q_rows[lo:hi] - start) * num_g, counts)
        pair += gallery_enc.indices[pos]
        # Encodings sum to 1, so sum(max) = 2 - sum(min).
        min_sum = np.bincount(
            pair, weights=mins,
            minlength=(stop - start) * num_g).reshape(stop - start, num_g)
        # Rounding can take min_sum a hair above 1.
        jaccard = np.maximum(1 - min_sum / (2 - min_sum), 0)
        out[start:stop] = (1 - lambda_value) * jaccard + \
            lambda_value * q_g[start:stop]
    return out
