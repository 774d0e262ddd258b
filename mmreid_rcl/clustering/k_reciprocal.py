"""k-reciprocal encoding and Jaccard overlap of neighbour lists.

The encoding of Zhong et al., "Re-ranking Person Re-identification with
k-reciprocal Encoding" (CVPR 2017), shared by re-clustering
(:func:`~mmreid_rcl.clustering.jaccard_distance`) and re-ranking
(:func:`~mmreid_rcl.evaluation.functional.re_ranking`). Both hand over the
neighbour lists ``knn(i)`` of N samples (nearest first, normally the sample
itself first) and a distance ``d(i, j)`` for any pair; everything below
depends on them only:

1. ``R(i, k)``: the k-reciprocal set, the j among the first ``k + 1`` of
   ``knn(i)`` that have i among the first ``k + 1`` of ``knn(j)``, the
   lists cut at the columns there are. Re-clustering gives ``k1`` columns
   (so ``R(i, k1)`` is drawn from ``k1`` samples, as cluster contrast
   computes it), re-ranking ``k1 + 1`` (as the paper's code does).
2. Expansion: ``E(i) = R(i, k1)`` united with every ``R(c, round(k1/2))``,
   ``c`` in ``R(i, k1)``, that shares more than 2/3 of its members with
   ``R(i, k1)``.
3. Encoding: ``V[i, j] = exp(-d(i, j)) / sum_{j' in E(i)} exp(-d(i, j'))``
   for j in E(i), zero elsewhere; each row sums to one. Computed in the
   float type of the distances given.
4. Local query expansion (``k2 > 1``): ``V[i] <- mean of V[q]`` over the
   first ``k2`` samples q of ``knn(i)``, summed in list order.
5. ``d_J(i, j) = 1 - s / (2 - s)`` with ``s = sum_k min(V[i, k], V[j, k])``
   (``sum max = 2 - sum min`` because rows sum to one), clipped at zero.

Everything is sparse: V has O(N k1) entries, and only pairs whose
encodings share a column (``s > 0``) produce terms of ``s``.
:func:`overlap_terms` produces them; :func:`cross_jaccard` sums them into
dense blocks, the re-clustering's ``upper_jaccard`` into a sparse triangle.
"""
from typing import Callable, Iterator, Tuple

import numpy as np
import scipy.sparse as sp

# Terms of the overlap product of the expansion handled at once (an upper
# bound of its entries, about 10 bytes each).
OVERLAP_BLOCK_SIZE = 1 << 21

PairDistances = Callable[[np.ndarray, np.ndarray], np.ndarray]


def index_dtype(maxval: int):
    """The narrowest of int32 and int64 that holds ``maxval``."""
    return np.int32 if maxval < np.iinfo(np.int32).max else np.int64


def row_blocks(per_row: np.ndarray, chunk_size: int,
               max_rows: int) -> np.ndarray:
    """Row bounds of blocks of about ``chunk_size`` work, ``max_rows`` at
    most."""
    ends = np.cumsum(per_row)
    total = ends[-1] if len(ends) else 0
    cuts = np.searchsorted(ends, np.arange(chunk_size, total, chunk_size),
                           side='right')
    cuts = np.concatenate([[0], cuts, [len(per_row)]])
    bounds = np.unique(np.concatenate(
        [np.arange(lo, hi, max_rows) for lo, hi in zip(cuts[:-1], cuts[1:])]
        + [[len(per_row)]]))
    return bounds


def _binary_pattern(cols: np.ndarray, n: int) -> sp.csr_matrix:
    """CSR (n, n) with ones at ``(i, cols[i, t])``, repeats merged."""
    m = cols.shape[1]
    rows = np.repeat(np.arange(n, dtype=np.int64), m)
    pattern = sp.csr_matrix(
        (np.ones(n * m, dtype=np.int32), (rows, cols.ravel())),
        shape=(n, n))
    pattern.data[:] = 1  # padded neighbour lists may repeat an index
    return pattern


def k_reciprocal_sets(indices: np.ndarray, m: int) -> sp.csr_matrix:
    """Mutual membership among the first ``m`` neighbours.

    Args:
        indices (np.ndarray): neighbour lists (N, >= m), int64.
        m (int): length of the forward lists.

    Returns:
        sp.csr_matrix: binary (N, N) int32; row i holds ``R(i)``, the j in
        ``indices[i, :m]`` with ``i`` in ``indices[j, :m]``.
    """
    forward = _binary_pattern(indices[:, :m], indices.shape[0])
    reciprocal = forward.multiply(forward.T).tocsr()
    reciprocal.sort_indices()
    return reciprocal


def _expanded_sets(r_full: sp.csr_matrix,
                   r_half: sp.csr_matrix,
                   block_size: int = OVERLAP_BLOCK_SIZE) -> sp.csr_matrix:
    """Binary pattern of the expanded sets E(i) (step 2 of the module).

    The overlaps are formed for blocks of rows whose product has at most
    about ``block_size`` terms, so that their memory does not grow with
    the number of samples.
    """
    n = r_full.shape[0]
    half_sizes = np.diff(r_half.indptr)
    # Reciprocal sets are symmetric (j in R(i) iff i in R(j)): r_half is
    # its own transpose, and row i of the product has at most
    # sum_{c in R(i)} |R_half(c)| terms.
    terms = r_full @ half_sizes.astype(np.int64)
    bounds = row_blocks(terms, block_size, n)
    chosen_rows, chosen_cols = [], []
    for r0, r1 in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        part = r_full[r0:r1]
        # overlap[i, c] = |R(i) ∩ R_half(c)|, kept only where c is in R(i).
        overlap = (part @ r_half).multiply(part).tocoo()
        # Same float test as the public code: |∩| > 2/3 |R_half(c)|.
        take = overlap.data > (2.0 / 3.0) * half_sizes[overlap.col]
        chosen_rows.append(overlap.row[take].astype(np.int64) + r0)
        chosen_cols.append(overlap.col[take])
        del overlap, take
    rows = np.concatenate(chosen_rows)
    chosen = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.int32),
         (rows, np.concatenate(chosen_cols))),
        shape=(n, n))
    del rows, chosen_rows, chosen_cols
    expanded = (r_full + chosen @ r_half).tocsr()
    expanded.data[:] = 1
    expanded.sort_indices()
    return expanded


def expanded_sets(indices: np.ndarray, k1: int) -> sp.csr_matrix:
    """The expanded k-reciprocal sets E(i) (steps 1-2 of the module).

    Args:
        indices (np.ndarray): neighbour lists (N, M) int64, nearest first;
            ``R(i, k)`` is drawn from their first ``min(k + 1, M)``
            entries.
        k1 (int): k of the full sets; the half sets use ``round(k1 / 2)``.

    Returns:
        sp.csr_matrix: binary (N, N) int32 pattern with sorted indices;
        row i holds E(i).
    """
    width = indices.shape[1]
    half = int(np.around(k1 / 2))
    r_full = k_reciprocal_sets(indices, min(k1 + 1, width))
    r_half = k_reciprocal_sets(indices, min(half + 1, width))
    return _expanded_sets(r_full, r_half)


def encode_neighbour_lists(indices: np.ndarray, k1: int, k2: int,
                           pair_distances: PairDistances) -> sp.csr_matrix:
    """The encoding V of steps 1-4 of the module docstring.

    Args:
        indices (np.ndarray): neighbour lists (N, M) int64, nearest first,
            the sample itself normally first; M >= k2.
        k1 (int): k of the k-reciprocal sets.
        k2 (int): neighbours averaged by the local query expansion (1
            disables it).
        pair_distances (callable): ``pair_distances(rows, cols)`` returns
            the distances ``d(rows[t], cols[t])`` as a new float array; V
            has its float type.

    Returns:
        sp.csr_matrix: V, (N, N) with sorted indices, rows summing to one
        (rows of a sample with an empty reciprocal set are empty).
    """
    n = indices.shape[0]
    expanded = expanded_sets(indices, k1)
    rows = np.repeat(
        np.arange(n, dtype=index_dtype(n)), np.diff(expanded.indptr))
    # In place: no further temporaries of this size.
    weights = pair_distances(rows, expanded.indices)
    np.negative(weights, out=weights)
    np.exp(weights, out=weights)
    totals = np.bincount(rows, weights=weights, minlength=n)
    weights /= totals.astype(weights.dtype, copy=False)[rows]
    encoding = sp.csr_matrix((weights, expanded.indices, expanded.indptr),
                             shape=(n, n))
    del expanded, rows, weights
    if k2 > 1:
        encoding = _local_query_expansion(encoding, indices, k2)
    return encoding


def _local_query_expansion(encoding: sp.csr_matrix, indices: np.ndarray,
                           k2: int) -> sp.csr_matrix:
    """Step 4: each row of V replaced by the mean over the first ``k2`` of
    its neighbour list (a repeated, padded index counts twice)."""
    n = encoding.shape[0]
    m = min(k2, indices.shape[1])
    mean = sp.csr_matrix(
        (np.full(n * m, 1.0 / m, dtype=encoding.dtype),
         indices[:, :m].ravel(), np.arange(0, n * m + 1, m)),
        shape=(n, n))
    expanded = (mean @ encoding).tocsr()
    expanded.sum_duplicates()
    return expanded


def overlap_terms(values: np.ndarray, starts: np.ndarray,
                  counts: np.ndarray, row_ptr: np.ndarray,
                  partner_rows: np.ndarray, partner_values: np.ndarray,
                  width: int) -> Tuple[np.ndarray, np.ndarray]:
    """The terms ``min(V[i, k], W[j, k])`` of the overlaps of a block of
    rows of V with rows of W.

    W is read column by column (its CSC entries): entry e = (i, k) of the
    block meets W's entries ``starts[e] .. starts[e] + counts[e] - 1``, all
    of column k; each meeting (i, j) is one term of ``s(i, j)``.

    Args:
        values (np.ndarray): the block's entries of V, row by row, (E, ).
        starts (np.ndarray): first partner of each entry, (E, ) int.
        counts (np.ndarray): partners of each entry, (E, ) int64.
        row_ptr (np.ndarray): bounds of the block's rows in ``values``,
            (B + 1, ) starting at 0.
        partner_rows (np.ndarray): row j of each entry of W, CSC order.
        partner_values (np.ndarray): W's values, CSC order, the type of
            ``values``.
        width (int): stride of the pair keys.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``keys`` (int64 ``b * width + j``,
        b the row in the block) and ``mins``, one per term, entry by entry
        and, within an entry, in W's CSC order.
    """
    ends = np.cumsum(counts)
    total = int(ends[-1]) if len(ends) else 0
    # Positions of all partners: starts[e] + t for t < counts[e], as one
    # repeat plus an arange.
    q = np.repeat(starts.astype(np.int64) - (ends - counts), counts)
    q += np.arange(total, dtype=np.int64)
    mins = np.repeat(values, counts)
    np.minimum(mins, partner_values[q], out=mins)
    row_ends = np.concatenate([[0], ends])[row_ptr]
    keys = np.repeat(
        np.arange(len(row_ptr) - 1, dtype=np.int64) * width,
        np.diff(row_ends))
    keys += partner_rows[q]
    return keys, mins


def jaccard_from_overlap(overlap: np.ndarray) -> np.ndarray:
    """``1 - s / (2 - s)`` (step 5), clipped at zero: rounding can take
    ``s`` a hair above one."""
    return np.maximum(1.0 - overlap / (2.0 - overlap), 0.0)


def cross_jaccard(
        encoding_a: sp.csr_matrix, encoding_b: sp.csr_matrix,
        block_entries: int) -> Iterator[Tuple[int, int, np.ndarray]]:
    """Jaccard distance of every row of A to every row of B, dense.

    Rows of A are handled a block at a time, about ``block_entries``
    distances each.

    Args:
        encoding_a (sp.csr_matrix): encodings (Q, N), rows summing to one.
        encoding_b (sp.csr_matrix): encodings (G, N), rows summing to one,
            of the same type as A.
        block_entries (int): distances of a block.

    Yields:
        tuple: ``(start, stop, distances)``: rows ``start:stop`` of A and
        their float64 distances to B, shape (stop - start, G).
    """
    num_a, num_b = encoding_a.shape[0], encoding_b.shape[0]
    by_col = encoding_b.tocsc()
    col_start = by_col.indptr[:-1]
    col_count = np.diff(by_col.indptr).astype(np.int64)
    step = max(1, block_entries // num_b)
    for start in range(0, num_a, step):
        stop = min(start + step, num_a)
        lo, hi = encoding_a.indptr[start], encoding_a.indptr[stop]
        cols = encoding_a.indices[lo:hi]
        keys, mins = overlap_terms(encoding_a.data[lo:hi], col_start[cols],
                                   col_count[cols],
                                   encoding_a.indptr[start:stop + 1] - lo,
                                   by_col.indices, by_col.data, num_b)
        overlap = np.bincount(
            keys, weights=mins,
            minlength=(stop - start) * num_b).reshape(stop - start, num_b)
        del keys, mins
        yield start, stop, jaccard_from_overlap(overlap)
