"""Retrieval numerics of re-ID: feature distances, CMC, mAP and mINP.

The ranking follows the Market-1501 protocol: for every query, gallery
images showing the query's identity under the query's own camera are
ignored, and a query is scored only when at least one image of its identity
remains. Ties in distance are broken by gallery index, i.e. each query's
gallery is ordered by a *stable* sort of its distances; a ranking is thus a
deterministic function of the distance matrix.

:func:`rank_distances` is the one ordering of a gallery: the top-k lists
of retrieval and of the ranking pictures, and the neighbour lists of
re-ranking. :func:`evaluate_rank` and :func:`per_query_metrics` score the
same order.
"""
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from mmreid_rcl.utils.sort_keys import (KEY_BITS, float32_order_bits,
                                        pack_keys, unpack_key)
from mmreid_rcl.utils.validation import ArrayLike, as_array, as_ids, check_int

# Upper bound on the number of distance entries processed at once; keeps
# the temporary masks, keys and sort orders of evaluate_rank within a few
# hundred megabytes whatever the size of the problem.
_BLOCK_ENTRIES = 1 << 23


def _as_feature_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        x = torch.from_numpy(np.ascontiguousarray(as_array(x, name)))
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
    high to low bits of a uint64 (:func:`pack_keys`). The keys are unique,
    so numpy's plain sort of the keys gives exactly the stable order,
    several times faster than an argsort, stable sort or lexsort.
    Values wider than float32 are keyed by their float32 rounding, which
    keeps order but may merge distinct values; see ``_fix_merged_ties``.

    Returns:
        tuple: ``(rows, cols, flags)`` in the sorted order.
    """
    col_bits = max(int(num_cols - 1).bit_length(), 1)
    row_bits = KEY_BITS - 33 - col_bits
    if row_bits < 1 or rows.max(initial=0) >= (1 << row_bits):
        raise ValueError(f'too many gallery samples ({num_cols}) or rows in '
                         'a block to pack the sort keys')
    widths = (row_bits, 32, col_bits, 1)
    keys = pack_keys((rows,
                      float32_order_bits(values.astype(np.float32,
                                                       copy=False)), cols,
                      flags), widths)
    keys.sort()
    return (unpack_key(keys, widths, 0).astype(np.intp),
            unpack_key(keys, widths, 2).astype(np.intp),
            unpack_key(keys, widths, 3).astype(bool))


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


def _check_distmat(distmat: ArrayLike) -> np.ndarray:
    """A (Q, G) real, NaN-free distance matrix with Q, G >= 1."""
    distmat = as_array(distmat, 'distmat')
    if distmat.ndim != 2:
        raise ValueError('distmat must be 2-D (num_query, num_gallery), got '
                         f'shape {distmat.shape}')
    if 0 in distmat.shape:
        raise ValueError('distmat must have at least one query and one '
                         f'gallery sample, got shape {distmat.shape}')
    if not (np.issubdtype(distmat.dtype, np.floating)
            or np.issubdtype(distmat.dtype, np.integer)):
        raise TypeError(f'distmat must hold real numbers, got '
                        f'{distmat.dtype}')
    # NaN propagates through max: one reduction finds any.
    if np.issubdtype(distmat.dtype, np.floating) and np.isnan(
            distmat.max()):
        raise ValueError('distmat contains NaN')
    return distmat


def _protocol_ids(q_pids: ArrayLike, g_pids: ArrayLike, q_camids: ArrayLike,
                  g_camids: ArrayLike, num_q: Optional[int],
                  num_g: Optional[int]) -> Tuple[np.ndarray, ...]:
    """Identities and cameras of both sides as int64 vectors, their
    lengths those of the rows and columns of distmat when given."""
    rows = None if num_q is None else 'rows of distmat'
    cols = None if num_g is None else 'columns of distmat'
    q_pids = as_ids(q_pids, 'q_pids', num_q, rows)
    g_pids = as_ids(g_pids, 'g_pids', num_g, cols)
    q_camids = as_ids(q_camids, 'q_camids', len(q_pids), rows)
    g_camids = as_ids(g_camids, 'g_camids', len(g_pids), cols)
    return q_pids, g_pids, q_camids, g_camids


def protocol_exclusion(q_pids: ArrayLike,
                       g_pids: ArrayLike,
                       q_camids: ArrayLike,
                       g_camids: ArrayLike,
                       shape: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """Which gallery images the re-ID protocol hides from each query.

    A gallery image is left out of a query's ranking when it shows the
    query's identity *and* was taken by the query's camera, as in
    :func:`evaluate_rank`.

    Args:
        q_pids (np.ndarray): Query identities, shape (Q, ).
        g_pids (np.ndarray): Gallery identities, shape (G, ).
        q_camids (np.ndarray): Query cameras, shape (Q, ).
        g_camids (np.ndarray): Gallery cameras, shape (G, ).
        shape (tuple[int, int], optional): (Q, G) of the distance matrix
            the mask is for, which the identities must match.

    Returns:
        np.ndarray: Bool mask of shape (Q, G), True where excluded.
    """
    q_pids, g_pids, q_camids, g_camids = _protocol_ids(
        q_pids, g_pids, q_camids, g_camids, *(shape or (None, None)))
    _, _, junk_rows, junk_cols = _match_pairs(q_pids, g_pids, q_camids,
                                              g_camids)
    exclude = np.zeros((len(q_pids), len(g_pids)), dtype=bool)
    exclude[junk_rows, junk_cols] = True
    return exclude


def rank_distances(distmat: ArrayLike,
                   topk: int,
                   exclude: Optional[np.ndarray] = None
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """The ``topk`` nearest gallery entries of every query.

    Rows are ordered by ascending distance, ties by ascending gallery
    index: the first ``topk`` entries of a stable argsort of each row.
    Only the entries up to each row's ``topk``-th smallest distance are
    sorted (found with ``np.partition``), by the packed-key sort of
    :func:`evaluate_rank`, so the cost stays close to linear in the
    gallery size; rows are processed in blocks of at most
    ``_BLOCK_ENTRIES`` entries.

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
    distmat = _check_distmat(distmat)
    topk = check_int(topk, 'topk')
    if exclude is not None:
        exclude = np.asarray(exclude, dtype=bool)
        if exclude.shape != distmat.shape:
            raise ValueError(f'exclude must have the shape of distmat '
                             f'{distmat.shape}, got {exclude.shape}')
    num_q, num_g = distmat.shape
    k = min(topk, num_g)
    indices = np.empty((num_q, k), dtype=np.int64)
    distances = np.empty((num_q, k), dtype=np.float32)
    block_rows = max(1, _BLOCK_ENTRIES // num_g)
    for start in range(0, num_q, block_rows):
        stop = min(start + block_rows, num_q)
        block = distmat[start:stop]
        if exclude is not None:
            # Excluded entries go last; they are only reached, and then
            # hidden below, in rows with fewer than k others.
            block = np.where(exclude[start:stop], np.inf, block)
        # Everything strictly nearer than the k-th smallest value is in
        # the top k; entries equal to it compete by index.
        kth = np.partition(block, k - 1, axis=1)[:, k - 1]
        flat, rows, cols = _mask_entries(block <= kth[:, None])
        rows, cols, flags = _sort_candidates(rows, cols, np.take(block, flat),
                                             np.zeros(len(flat), dtype=bool),
                                             num_g)
        del flat
        if block.dtype != np.float32:
            _fix_merged_ties(block, rows, cols, flags)
        counts = np.bincount(rows, minlength=stop - start)
        first = np.cumsum(counts) - counts
        cols = cols[first[:, None] + np.arange(k)]
        indices[start:stop] = cols
        distances[start:stop] = block[np.arange(stop - start)[:, None], cols]
    if exclude is not None:
        hidden = exclude[np.arange(num_q)[:, None], indices]
        indices[hidden] = -1
        distances[hidden] = np.inf
    return indices, distances


def _query_statistics(distmat: np.ndarray, q_pids: np.ndarray,
                      g_pids: np.ndarray, q_camids: np.ndarray,
                      g_camids: np.ndarray) -> Tuple[np.ndarray, ...]:
    """AP numerators, first and last match ranks and match counts.

    Args:
        distmat (np.ndarray): checked distances (Q, G).
        q_pids, g_pids, q_camids, g_camids (np.ndarray): checked int64
            identities and cameras.

    Returns:
        tuple: ``(ap_sum, first_rank, last_rank, num_matches)``, each of
        shape (Q, ); see :func:`_stats_from_sorted`.
    """
    num_q, num_g = distmat.shape
    match_rows, match_cols, junk_rows, junk_cols = _match_pairs(
        q_pids, g_pids, q_camids, g_camids)
    num_matches = np.bincount(match_rows, minlength=num_q)
    has_match = num_matches > 0
    # Rows without matches are never ranked: nothing is <= NaN. Integer
    # distances are compared as float64, which can only add candidates
    # beyond a row's last match, where they change nothing.
    thresholds = np.full(
        num_q,
        np.nan,
        dtype=distmat.dtype
        if np.issubdtype(distmat.dtype, np.floating) else np.float64)
    if has_match.any():
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
    return ap_sum, first_rank, last_rank, num_matches


def per_query_metrics(distmat: ArrayLike, q_pids: ArrayLike,
                      g_pids: ArrayLike, q_camids: ArrayLike,
                      g_camids: ArrayLike) -> Dict[str, np.ndarray]:
    """AP, INP and first-match rank of every query.

    The arguments, the ranking and the protocol are those of
    :func:`evaluate_rank` (distances (Q, G), query and gallery identities
    and cameras), whose mAP and mINP are the means of ``AP`` and ``INP``
    over the queries with a match.

    Returns:
        dict: arrays of shape (Q, ): ``AP`` and ``INP`` (float64 in
        [0, 1], NaN for queries without a match: no gallery image of their
        identity from another camera), ``first_match_rank`` (int64,
        1-based, 0 without a match) and ``num_matches`` (int64).
    """
    distmat = _check_distmat(distmat)
    ids = _protocol_ids(q_pids, g_pids, q_camids, g_camids, *distmat.shape)
    ap_sum, first_rank, last_rank, num_matches = _query_statistics(
        distmat, *ids)
    has_match = num_matches > 0
    ap = np.full(len(num_matches), np.nan)
    ap[has_match] = ap_sum[has_match] / num_matches[has_match]
    inp = np.full(len(num_matches), np.nan)
    inp[has_match] = num_matches[has_match] / last_rank[has_match]
    return dict(
        AP=ap,
        INP=inp,
        first_match_rank=first_rank,
        num_matches=num_matches)


def average_precision_per_query(distmat: ArrayLike, q_pids: ArrayLike,
                                g_pids: ArrayLike, q_camids: ArrayLike,
                                g_camids: ArrayLike) -> np.ndarray:
    """The ``AP`` of :func:`per_query_metrics`: float64 (Q, ), NaN for
    queries without a match."""
    return per_query_metrics(distmat, q_pids, g_pids, q_camids,
                             g_camids)['AP']


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
    max_rank = check_int(max_rank, 'max_rank')
    metrics = per_query_metrics(distmat, q_pids, g_pids, q_camids, g_camids)
    has_match = metrics['num_matches'] > 0
    num_valid = int(has_match.sum())
    if num_valid == 0:
        raise ValueError('no query has a match in the gallery (same '
                         'identity, another camera): cannot rank')
    first = metrics['first_match_rank'][has_match]
    cmc = np.cumsum(
        np.bincount(np.minimum(first, max_rank + 1) - 1,
                    minlength=max_rank + 1)[:max_rank]) / num_valid
    return dict(
        mAP=float(np.mean(metrics['AP'][has_match])),
        cmc=cmc,
        mINP=float(np.mean(metrics['INP'][has_match])),
        num_valid_queries=num_valid,
        num_invalid_queries=len(has_match) - num_valid)
