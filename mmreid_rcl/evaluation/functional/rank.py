"""Retrieval numerics of re-ID: feature distances, CMC, mAP and mINP.

The ranking follows the Market-1501 protocol: for every query, gallery
images showing the query's identity under the query's own camera are
ignored, and a query is scored only when at least one image of its identity
remains. Ties in distance are broken by gallery index, i.e. each query's
gallery is ordered by a *stable* sort of its distances; a ranking is thus a
deterministic function of the distance matrix.
"""
from typing import Dict, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence]

# Upper bound on the number of distance entries processed at once; keeps
# the temporary masks, keys and sort orders of evaluate_rank within a few
# hundred megabytes whatever the size of the problem.
_BLOCK_ENTRIES = 1 << 23


def _as_numpy(x: ArrayLike, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception as err:  # ragged lists and the like
        raise TypeError(f'{name} must be array-like, got '
                        f'{type(x).__name__}') from err


def _as_feature_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        x = torch.from_numpy(np.ascontiguousarray(_as_numpy(x, name)))
    if x.dim() != 2:
        raise ValueError(f'{name} must be 2-D (num_samples, dim), got shape '
                         f'{tuple(x.shape)}')
    if x.shape[0] == 0:
        raise ValueError(f'{name} is empty: expected at least one sample')
    if not (x.is_floating_point() or x.dtype in (torch.int8, torch.uint8,
                                                 torch.int16, torch.int32,
                                                 torch.int64)):
        raise TypeError(f'{name} must hold real numbers, got {x.dtype}')
    return x.detach().to(device='cpu', dtype=torch.float32)


def compute_distance(query_feats: ArrayLike,
                     gallery_feats: ArrayLike,
                     metric: str = 'euclidean',
                     chunk_size: int = 2048) -> np.ndarray:
    """Distances between L2-normalised query and gallery features.

    The features are L2-normalised here (a zero vector stays zero, so its
    cosine similarity to everything is 0). With ``c`` the cosine similarity:

    - ``'euclidean'``: the squared euclidean distance ``2 - 2c``, in [0, 4];
    - ``'cosine'``: the cosine distance ``1 - c``, in [0, 2].

    Both rank the gallery identically; rounding below zero is clipped.

    Args:
        query_feats (Tensor | np.ndarray): Shape (Q, D).
        gallery_feats (Tensor | np.ndarray): Shape (G, D).
        metric (str): ``'euclidean'`` or ``'cosine'``.
        chunk_size (int): Query rows normalised and multiplied at once.
            Products are written straight into the output, so besides it
            and a normalised copy of the gallery only ``chunk_size * D``
            floats are allocated.

    Returns:
        np.ndarray: float32 distances of shape (Q, G).
    """
    if metric not in ('euclidean', 'cosine'):
        raise ValueError(f"metric must be 'euclidean' or 'cosine', got "
                         f'{metric!r}')
    if chunk_size < 1:
        raise ValueError(f'chunk_size must be positive, got {chunk_size}')
    query = _as_feature_tensor(query_feats, 'query_feats')
    gallery = _as_feature_tensor(gallery_feats, 'gallery_feats')
    if query.shape[1] != gallery.shape[1]:
        raise ValueError('query_feats and gallery_feats must have the same '
                         f'feature dim, got {query.shape[1]} and '
                         f'{gallery.shape[1]}')
    gallery = F.normalize(gallery, dim=1)
    # 'euclidean' = 2 - 2c and 'cosine' = 1 - c share the form a - a * c.
    scale = 2.0 if metric == 'euclidean' else 1.0
    out = np.empty((query.shape[0], gallery.shape[0]), dtype=np.float32)
    out_t = torch.from_numpy(out)
    with torch.no_grad():
        for start in range(0, query.shape[0], chunk_size):
            q = F.normalize(query[start:start + chunk_size], dim=1)
            block = out_t[start:start + chunk_size]
            torch.mm(q, gallery.t(), out=block)
            block.mul_(-scale).add_(scale).clamp_(min=0.0, max=2 * scale)
    return out


def _match_pairs(q_pids: np.ndarray, g_pids: np.ndarray,
                 q_camids: np.ndarray,
                 g_camids: np.ndarray) -> Tuple[np.ndarray, ...]:
    """All (query, gallery) pairs of one identity, without a Q x G mask.

    Returns:
        tuple: ``(match_rows, match_cols, junk_rows, junk_cols)``; matches
        are pairs of the same identity seen by different cameras, junk
        pairs the same identity under the same camera (ignored).
        Pairs are ordered by query.
    """
    g_order = np.argsort(g_pids, kind='stable')
    sorted_pids = g_pids[g_order]
    lo = np.searchsorted(sorted_pids, q_pids, side='left')
    counts = np.searchsorted(sorted_pids, q_pids, side='right') - lo
    total = int(counts.sum())
    rows = np.repeat(np.arange(len(q_pids)), counts)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    cols = g_order[np.repeat(lo, counts) + offsets]
    junk = g_camids[cols] == q_camids[rows]
    return rows[~junk], cols[~junk], rows[junk], cols[junk]


def _float32_order_bits(values: np.ndarray) -> np.ndarray:
    """Map float32 to uint64 below 2**32 with the same order and ties.

    Flipping the sign bit of non-negative floats and all bits of negative
    ones makes unsigned comparison agree with float comparison; -0.0 is
    first made +0.0 so that both zeros tie, as they do as floats.
    """
    bits = (values + np.float32(0)).view(np.uint32)
    # All ones for negative values, the sign bit alone otherwise.
    flip = (bits >> np.uint32(31)) * np.uint32(0x7FFFFFFF)
    flip |= np.uint32(0x80000000)
    bits ^= flip
    return bits.astype(np.uint64)


def _mask_entries(mask: np.ndarray) -> Tuple[np.ndarray, ...]:
    """Flat, row and column indices of the True entries of a 2-D mask.

    Returns:
        tuple: ``(flat, rows, cols)`` in row-major order.
    """
    flat = np.flatnonzero(mask)
    # Cheaper than an integer division of every flat index.
    rows = np.repeat(np.arange(mask.shape[0]), np.count_nonzero(mask, 1))
    cols = flat - rows * mask.shape[1]
    return flat, rows, cols


def _sort_candidates(rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
                     flags: np.ndarray,
                     num_cols: int) -> Tuple[np.ndarray, ...]:
    """Order candidates by (row, value, col) with one sort of packed keys.

    Row, float32 order bits of the value, col and flag are packed from
    high to low bits of a uint64. The keys are unique, so numpy's plain
    (SIMD-accelerated) sort of the keys gives exactly the stable order,
    several times faster than an argsort, stable sort or lexsort.
    Values wider than float32 are keyed by their float32 rounding, which
    keeps order but may merge distinct values; see ``_fix_merged_ties``.

    Returns:
        tuple: ``(rows, cols, flags)`` in the sorted order.
    """
    col_bits = max(int(num_cols - 1).bit_length(), 1)
    row_shift = 33 + col_bits
    if row_shift >= 64 or rows.max(initial=0) >= (1 << (64 - row_shift)):
        raise ValueError(f'too many gallery samples ({num_cols}) or rows in '
                         'a block to pack the sort keys')
    keys = _float32_order_bits(values.astype(np.float32, copy=False))
    keys <<= np.uint64(col_bits + 1)
    keys |= rows.astype(np.uint64) << np.uint64(row_shift)
    keys |= cols.astype(np.uint64) << np.uint64(1)
    keys |= flags
    keys.sort()
    col_mask = np.uint64((1 << col_bits) - 1)
    return ((keys >> np.uint64(row_shift)).astype(np.intp),
            ((keys >> np.uint64(1)) & col_mask).astype(np.intp),
            (keys & np.uint64(1)).astype(bool))


def _fix_merged_ties(block: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                     flags: np.ndarray) -> None:
    """Restore the exact order where float32 rounding merged values.

    Rounding to float32 is monotone, so the order from the float32 keys
    can only be wrong inside runs of one row with equal float32 values.
    Runs where the original values decrease are re-sorted by (value, col)
    in place; with realistic distances there are few or none.
    """
    values = np.take(block, rows * block.shape[1] + cols)
    same_row = rows[1:] == rows[:-1]
    disorder = same_row & (values[1:] < values[:-1])
    if not disorder.any():
        return
    rounded = values.astype(np.float32)
    new_run = np.ones(len(rows), dtype=bool)
    new_run[1:] = ~same_row | (rounded[1:] != rounded[:-1])
    run_ids = np.cumsum(new_run)
    idx = np.flatnonzero(np.isin(run_ids, run_ids[1:][disorder]))
    order = np.lexsort((cols[idx], values[idx], run_ids[idx]))
    cols[idx] = cols[idx[order]]
    flags[idx] = flags[idx[order]]


def _stats_from_sorted(rows: np.ndarray, is_match: np.ndarray,
                       num_rows: int) -> Tuple[np.ndarray, ...]:
    """Per-row AP numerators and first/last match ranks.

    Args:
        rows (np.ndarray): Row of each ranked entry, shape (M, ), grouped
            by row with every row's entries in rank order and covering all
            entries up to the row's last match.
        is_match (np.ndarray): Whether each entry is a match, shape (M, ).
        num_rows (int): Number of rows.

    Returns:
        tuple: ``(ap_sum, first_rank, last_rank)``, each of shape
        (num_rows, ); ranks are 1-based and 0 for rows without a match;
        ``ap_sum`` is the sum of the precisions at each match.
    """
    counts = np.bincount(rows, minlength=num_rows)
    row_start = np.cumsum(counts) - counts
    match_idx = np.flatnonzero(is_match)
    match_rows = rows[match_idx]
    rank = match_idx - row_start[match_rows] + 1
    # The k-th match of a row: its index among all matches minus the
    # number of matches in earlier rows.
    matches_per_row = np.bincount(match_rows, minlength=num_rows)
    match_start = np.cumsum(matches_per_row) - matches_per_row
    kth = np.arange(len(match_idx)) - match_start[match_rows] + 1
    ap_sum = np.bincount(match_rows, weights=kth / rank, minlength=num_rows)
    first_rank = np.zeros(num_rows, dtype=np.int64)
    last_rank = np.zeros(num_rows, dtype=np.int64)
    is_first = kth == 1
    first_rank[match_rows[is_first]] = rank[is_first]
    is_last = kth == matches_per_row[match_rows]
    last_rank[match_rows[is_last]] = rank[is_last]
    return ap_sum, first_rank, last_rank


def _rank_block(block: np.ndarray, candidates: np.ndarray,
                match_flat: np.ndarray) -> Tuple[np.ndarray, ...]:
    """Rank the candidates of a block of rows.

    Args:
        block (np.ndarray): Distances of shape (B, G).
        candidates (np.ndarray): Bool mask of shape (B, G): the non-junk
            entries no farther than their row's largest match distance.
        match_flat (np.ndarray): Flat indices of the matches in the block.

    Returns:
        tuple: see :func:`_stats_from_sorted`.
    """
    num_rows, num_cols = block.shape
    flat, rows, cols = _mask_entries(candidates)
    flags = np.zeros(len(flat), dtype=bool)
    flags[np.searchsorted(flat, match_flat)] = True
    values = np.take(block, flat)
    del flat
    rows, cols, flags = _sort_candidates(rows, cols, values, flags, num_cols)
    if block.dtype != np.float32:
        _fix_merged_ties(block, rows, cols, flags)
    return _stats_from_sorted(rows, flags, num_rows)


def _check_ids(ids: ArrayLike, length: int, name: str,
               expected: str) -> np.ndarray:
    ids = _as_numpy(ids, name)
    if ids.ndim != 1 or len(ids) != length:
        raise ValueError(f'{name} must have shape ({length}, ) to match '
                         f'the {expected} of distmat, got {ids.shape}')
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f'{name} must hold integers, got {ids.dtype}')
    return ids.astype(np.int64, copy=False)


def evaluate_rank(distmat: ArrayLike,
                  q_pids: ArrayLike,
                  g_pids: ArrayLike,
                  q_camids: ArrayLike,
                  g_camids: ArrayLike,
                  max_rank: int = 50) -> Dict[str, Union[float, int,
                                                         np.ndarray]]:
    """CMC, mAP and mINP of a query-gallery distance matrix.

    Each query ranks the gallery by increasing distance, ties broken by
    gallery index (a stable sort). Gallery samples with the query's
    identity *and* camera are removed from its ranking; the others with
    its identity are its matches. With ``R`` matches at 1-based ranks
    ``r_1 < ... < r_R``:

    - AP = ``mean_k(k / r_k)``, mAP its mean over queries;
    - CMC@n = fraction of queries with ``r_1 <= n`` (first match);
    - INP = ``R / r_R``, mINP its mean (Ye et al., TPAMI 2021).

    Queries without any match are skipped and counted as invalid.

    Only entries ranked up to a query's last match can change these
    numbers, and those are exactly the non-junk entries no farther than
    the query's largest match distance. They are selected with a
    vectorised mask and only they are sorted, by one sort of packed
    (row, distance, index) keys. When most entries qualify (e.g. random
    distances) the same route stays exact, and it measured faster than a
    stable sort of whole rows; rows are processed in blocks of at most
    ``_BLOCK_ENTRIES`` entries to bound memory either way.

    Args:
        distmat (np.ndarray | Tensor): Distances of shape (Q, G).
        q_pids (np.ndarray | Tensor): Query identities, shape (Q, ).
        g_pids (np.ndarray | Tensor): Gallery identities, shape (G, ).
        q_camids (np.ndarray | Tensor): Query cameras, shape (Q, ).
        g_camids (np.ndarray | Tensor): Gallery cameras, shape (G, ).
        max_rank (int): Length of the returned CMC curve.

    Returns:
        dict: ``mAP`` (float), ``cmc`` (np.ndarray of shape (max_rank, ),
        rank-1 first), ``mINP`` (float), all as fractions in [0, 1], and
        ``num_valid_queries``, ``num_invalid_queries`` (int).
    """
    distmat = _as_numpy(distmat, 'distmat')
    if distmat.ndim != 2:
        raise ValueError('distmat must be 2-D (num_query, num_gallery), got '
                         f'shape {distmat.shape}')
    num_q, num_g = distmat.shape
    if num_q == 0 or num_g == 0:
        raise ValueError('distmat must have at least one query and one '
                         f'gallery sample, got shape {distmat.shape}')
    if isinstance(max_rank, bool) or not isinstance(
            max_rank, (int, np.integer)) or max_rank < 1:
        raise ValueError(f'max_rank must be a positive int, got {max_rank!r}')
    if not (np.issubdtype(distmat.dtype, np.floating)
            or np.issubdtype(distmat.dtype, np.integer)):
        raise TypeError(f'distmat must hold real numbers, got '
                        f'{distmat.dtype}')
    if np.issubdtype(distmat.dtype, np.floating) and np.isnan(
            distmat.max()):
        raise ValueError('distmat contains NaN')
    q_pids = _check_ids(q_pids, num_q, 'q_pids', 'rows')
    g_pids = _check_ids(g_pids, num_g, 'g_pids', 'columns')
    q_camids = _check_ids(q_camids, num_q, 'q_camids', 'rows')
    g_camids = _check_ids(g_camids, num_g, 'g_camids', 'columns')

    match_rows, match_cols, junk_rows, junk_cols = _match_pairs(
        q_pids, g_pids, q_camids, g_camids)
    num_matches = np.bincount(match_rows, minlength=num_q)
    has_match = num_matches > 0
    num_valid = int(has_match.sum())
    if num_valid == 0:
        raise ValueError('no query has a match in the gallery (same '
                         'identity, another camera): cannot rank')
    # Rows without matches are never ranked: nothing is <= NaN. Integer
    # distances are compared as float64, which can only add candidates
    # beyond a row's last match, where they change nothing.
    thresholds = np.full(
        num_q,
        np.nan,
        dtype=distmat.dtype
        if np.issubdtype(distmat.dtype, np.floating) else np.float64)
    thresholds[has_match] = np.maximum.reduceat(
        distmat[match_rows, match_cols],
        (np.cumsum(num_matches) - num_matches)[has_match])

    ap_sum = np.zeros(num_q)
    first_rank = np.zeros(num_q, dtype=np.int64)
    last_rank = np.zeros(num_q, dtype=np.int64)
    block_rows = max(1, _BLOCK_ENTRIES // num_g)
    for start in range(0, num_q, block_rows):
        stop = min(start + block_rows, num_q)
        # Pair lists are ordered by row, so a block's pairs are a slice.
        m_lo, m_hi = np.searchsorted(match_rows, (start, stop))
        j_lo, j_hi = np.searchsorted(junk_rows, (start, stop))
        match_flat = ((match_rows[m_lo:m_hi] - start) * num_g +
                      match_cols[m_lo:m_hi])
        junk_flat = ((junk_rows[j_lo:j_hi] - start) * num_g +
                     junk_cols[j_lo:j_hi])
        block = distmat[start:stop]
        candidates = block <= thresholds[start:stop, None]
        candidates.ravel()[junk_flat] = False
        ap_sum[start:stop], first_rank[start:stop], \
            last_rank[start:stop] = _rank_block(block, candidates,
                                                match_flat)

    first = first_rank[has_match]
    cmc = np.cumsum(
        np.bincount(np.minimum(first, max_rank + 1) - 1,
                    minlength=max_rank + 1)[:max_rank]) / num_valid
    return dict(
        mAP=float(np.mean(ap_sum[has_match] / num_matches[has_match])),
        cmc=cmc,
        mINP=float(np.mean(num_matches[has_match] / last_rank[has_match])),
        num_valid_queries=num_valid,
        num_invalid_queries=num_q - num_valid)
