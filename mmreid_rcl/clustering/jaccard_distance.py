"""Sparse k-reciprocal Jaccard distance.

The k-reciprocal encoding of Zhong et al., "Re-ranking Person
Re-identification with k-reciprocal Encoding" (CVPR 2017), in the form the
cluster-contrast baseline clusters with (k1=30, k2=6). For L2-normalised
features x (N x D) and the original distance d(i, j) = 2 - 2 x_i . x_j:

1. ``knn(i)``: the ``k1`` nearest samples of i, i itself included (first).
2. ``R(i, k)``: the k-reciprocal set, the j among the first ``k + 1`` of
   ``knn(i)`` that have i among the first ``k + 1`` of ``knn(j)``. Because
   ``knn`` holds ``k1`` samples, ``R(i, k1)`` is drawn from those ``k1``
   (the sample and its ``k1 - 1`` nearest others), exactly as cluster
   contrast computes it, and the half set ``R(i, round(k1 / 2))`` from the
   first ``round(k1 / 2) + 1``.
3. Expansion: ``E(i) = R(i, k1)`` united with every ``R(c, round(k1/2))``,
   ``c`` in ``R(i, k1)``, that shares more than 2/3 of its members with
   ``R(i, k1)``.
4. Encoding: ``V[i, j] = exp(-d(i, j)) / sum_{j' in E(i)} exp(-d(i, j'))``
   for j in E(i), zero elsewhere; each row sums to one.
5. Local query expansion (``k2 > 1``): ``V[i] <- mean of V[q]`` over the
   first ``k2`` samples q of ``knn(i)``.
6. ``d_J(i, j) = 1 - s / (2 - s)`` with ``s = sum_k min(V[i, k], V[j, k])``
   (``sum max = 2 - sum min`` because rows sum to one), clipped at zero.

Everything is kept sparse: V has O(N k1) entries, and only the pairs whose
encodings overlap (``s > 0``, i.e. ``d_J < 1``) are ever formed. The public
implementation fills three dense N x N matrices with per-sample Python loops;
here each step is a sparse product or a vectorised segment operation.
"""
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional, Tuple, Union

import numpy as np
import scipy.sparse as sp
import torch

from mmreid_rcl.utils.sort_keys import KEY_BITS, pack_keys, unpack_key
from mmreid_rcl.utils.validation import check_int
from .knn import (DEFAULT_KNN, KnnConfig, available_cpus, faiss_num_threads,
                  knn_search, pair_inner_products)

ArrayLike = Union[np.ndarray, torch.Tensor]

# Pair contributions of the Jaccard step handled at once (~40 bytes each).
DEFAULT_CHUNK_SIZE = 1 << 19
# Work done at once by the steps that build the encoding: terms of the
# overlap product of the expansion (an upper bound of its entries, about
# 10 bytes each) and pairs whose similarity is looked up (about 50 bytes
# each).
OVERLAP_BLOCK_SIZE = 1 << 21
PAIR_BLOCK_SIZE = 1 << 19


def as_unit_features(features: ArrayLike) -> np.ndarray:
    """Features as a float32, C-contiguous, L2-normalised (N, D) array.

    Already normalised float32 input is returned without a copy, which
    matters at 100k x 2048.

    Args:
        features (np.ndarray | torch.Tensor): features of shape (N, D).

    Returns:
        np.ndarray: float32 array (N, D), rows of unit norm.
    """
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu()
        if features.dtype != torch.float32:
            features = features.float()
        features = features.numpy()
    x = np.ascontiguousarray(features, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError('features must be a 2-D array (N, D), got shape '
                         f'{tuple(x.shape)}')
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f'features is empty, shape {tuple(x.shape)}')
    # No (N, D) temporary, unlike np.linalg.norm.
    norms = np.sqrt(np.einsum('ij,ij->i', x, x))
    if not np.isfinite(norms).all():
        raise ValueError('features holds NaN or infinite values')
    if (norms == 0).any():
        raise ValueError('features has all-zero rows, which cannot be '
                         'L2-normalised')
    if np.abs(norms - 1).max() > 1e-4:
        x = x / norms[:, None]
    return x


def unit_features_copy_bytes(features: ArrayLike) -> int:
    """Bytes :func:`as_unit_features` allocates for ``features``.

    Nothing for unit, float32, C-contiguous features (an array or a CPU
    tensor); one float32 copy for float32 features to normalise; two for
    other types or layouts (the conversion, then possibly the normalised
    copy, not checked here). Reads the norms, allocates nothing of the
    size of the features.

    Args:
        features (np.ndarray | torch.Tensor): features (N, D).

    Returns:
        int: bytes.
    """
    shape = tuple(getattr(features, 'shape', ()))
    if len(shape) != 2:
        return 0  # as_unit_features rejects it
    size = shape[0] * shape[1] * 4
    if isinstance(features, torch.Tensor):
        if features.device.type != 'cpu' or \
                features.dtype != torch.float32 or \
                not features.is_contiguous():
            return 2 * size
        features = features.detach().numpy()
    if not isinstance(features, np.ndarray) or \
            features.dtype != np.float32 or \
            not features.flags.c_contiguous:
        return 2 * size
    with np.errstate(all='ignore'):
        norms = np.sqrt(np.einsum('ij,ij->i', features, features))
    # Invalid rows make as_unit_features fail before any copy.
    if not np.isfinite(norms).all() or (norms == 0).any():
        return 0
    return size if np.abs(norms - 1).max() > 1e-4 else 0


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
    """Binary pattern of the expanded sets E(i) (step 3 of the module).

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
    bounds = _row_blocks(terms, block_size, n)
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


def _lookup(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Positions of ``keys`` in ``sorted_keys``; -1 where absent."""
    pos = np.searchsorted(sorted_keys, keys)
    pos[pos == len(sorted_keys)] = 0
    pos[sorted_keys[pos] != keys] = -1
    return pos


def _pair_similarities(x: np.ndarray,
                       rows: np.ndarray,
                       cols: np.ndarray,
                       nn_sims: np.ndarray,
                       nn_indices: np.ndarray,
                       block_size: int = PAIR_BLOCK_SIZE) -> np.ndarray:
    """Inner products ``x[rows] . x[cols]`` (float64).

    Most pairs of the expanded sets are kNN pairs in one direction or the
    other, whose similarity the search already returned; only the rest is
    computed from the features. Pairs are looked up ``block_size`` at a
    time.
    """
    n, k = nn_indices.shape
    keys = (np.arange(n, dtype=np.int64)[:, None] * n + nn_indices).ravel()
    order = np.argsort(keys, kind='stable')
    keys = keys[order]
    known = nn_sims.ravel()[order]
    del order

    out = np.empty(len(rows), dtype=np.float64)
    for start in range(0, len(rows), block_size):
        block = out[start:start + block_size]
        r = rows[start:start + block_size].astype(np.int64)
        c = cols[start:start + block_size].astype(np.int64)
        pos = _lookup(keys, r * n + c)
        hit = pos >= 0
        block[hit] = known[pos[hit]]
        todo = np.nonzero(~hit)[0]
        pos = _lookup(keys, c[todo] * n + r[todo])
        hit = pos >= 0
        block[todo[hit]] = known[pos[hit]]
        todo = todo[~hit]
        block[todo] = pair_inner_products(x, r[todo], c[todo])
        del r, c, pos, hit, todo
    return out


def k_reciprocal_encoding(x: np.ndarray, nn_sims: np.ndarray,
                          nn_indices: np.ndarray, k1: int,
                          k2: int) -> sp.csr_matrix:
    """The encoding V of steps 1-5 of the module docstring.

    Args:
        x (np.ndarray): unit features (N, D) float32.
        nn_sims (np.ndarray): kNN similarities (N, k1), most similar first.
        nn_indices (np.ndarray): kNN indices (N, k1) int64.
        k1 (int): size of the neighbour lists.
        k2 (int): neighbours averaged by the local query expansion.

    Returns:
        sp.csr_matrix: V, (N, N) float64 with sorted indices, rows summing
        to one (rows of a sample with an empty reciprocal set are empty).
    """
    n = x.shape[0]
    half = int(np.around(k1 / 2))
    r_full = k_reciprocal_sets(nn_indices, min(k1 + 1, k1))
    r_half = k_reciprocal_sets(nn_indices, min(half + 1, k1))
    expanded = _expanded_sets(r_full, r_half)
    del r_full, r_half

    rows = np.repeat(
        np.arange(n, dtype=_index_dtype(n)), np.diff(expanded.indptr))
    weights = _pair_similarities(x, rows, expanded.indices, nn_sims,
                                 nn_indices)
    # exp(-d) with d = 2 - 2 s lies in [e^-4, 1]: no overflow, and the
    # softmax needs no shift. In place: no temporaries of this size.
    weights *= 2.0
    weights -= 2.0
    np.exp(weights, out=weights)
    totals = np.bincount(rows, weights=weights, minlength=n)
    weights /= totals[rows]
    encoding = sp.csr_matrix((weights, expanded.indices, expanded.indptr),
                             shape=(n, n))
    del expanded, rows, weights

    if k2 > 1:
        # Mean over the k2 nearest; a repeated (padded) index counts twice,
        # as repeated rows would in a mean over ``V[knn[i, :k2]]``.
        qe = sp.csr_matrix(
            (np.full(n * k2, 1.0 / k2),
             (np.repeat(np.arange(n, dtype=np.int64),
                        k2), nn_indices[:, :k2].ravel())),
            shape=(n, n))
        encoding = (qe @ encoding).tocsr()
        encoding.sum_duplicates()
    return encoding


def _row_blocks(per_row: np.ndarray, chunk_size: int,
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


# Pair contributions are summed by sorting 64-bit words that hold the pair
# (high bits) and the float32 contribution (low 31 bits; it is positive, so
# its sign bit is free): one vectorised sort of plain integers instead of a
# sort of (index, value) records.
_VALUE_BITS = 31
_WORD_WIDTHS = (KEY_BITS - _VALUE_BITS, _VALUE_BITS)
# Entries handled at once where a full-size temporary is not needed.
_SLICE = 1 << 20


def upper_jaccard(encoding: sp.csr_matrix,
                  max_distance: float = 1.0,
                  chunk_size: int = DEFAULT_CHUNK_SIZE,
                  num_workers: int = 1) -> sp.csr_matrix:
    """Jaccard distance of every pair i < j whose encodings overlap.

    Every column k of V pairs up the samples that put weight on it; each
    such pair (i < j) contributes ``min(V[i, k], V[j, k])`` to ``s(i, j)``.
    The contributions are generated column-wise with segment arithmetic and
    summed per pair, block of rows by block of rows so that about
    ``chunk_size`` contributions exist at once; each block's pairs come out
    sorted, so the result is assembled without a further sort.

    Args:
        encoding (sp.csr_matrix): V, (N, N) non-negative, rows summing to
            one, no duplicate entries.
        max_distance (float): also drop pairs farther than this.
        chunk_size (int): contributions per block.
        num_workers (int): blocks processed in parallel threads.

    Returns:
        sp.csr_matrix: strictly upper triangular (N, N) float32 distances
        ``1 - s / (2 - s)`` (clipped at 0) with sorted indices.
    """
    n = encoding.shape[0]
    nnz = encoding.nnz
    # Per-entry arrays in the narrowest index type: at 100k samples they
    # hold about 8M entries each.
    pos_dtype = _index_dtype(nnz)
    # The CSC layout of V with, as data, the CSR position of every entry:
    # a linear-time transpose done by scipy instead of a sort.
    by_col = sp.csr_matrix(
        (np.arange(nnz, dtype=pos_dtype), encoding.indices, encoding.indptr),
        shape=encoding.shape).tocsc()
    csc_rows = by_col.indices
    # No copy when the caller already gave float32 values.
    values = np.asarray(encoding.data, dtype=np.float32)
    csc_vals = values[by_col.data]
    csc_pos = np.empty(nnz, dtype=pos_dtype)
    # The inverse permutation, a slice at a time (no full-size arange).
    for start in range(0, nnz, _SLICE):
        csc_pos[by_col.data[start:start + _SLICE]] = np.arange(
            start, min(start + _SLICE, nnz), dtype=pos_dtype)
    col_ends = by_col.indptr[1:].astype(pos_dtype)
    del by_col
    # Within a column rows ascend, so the partners j > i of entry (i, k)
    # are the entries after it in column k.
    partners = col_ends[encoding.indices]
    partners -= csc_pos
    partners -= 1
    per_row = _row_sums(partners, encoding.indptr)
    # The pair key (row in block) * N + col must fit the high 33 bits.
    max_rows = max(1, (1 << _WORD_WIDTHS[0]) // n)
    # d <= max_distance  <=>  s >= 2 (1 - max_distance) / (2 - max_distance)
    min_overlap = 2 * (1 - max_distance) / (2 - max_distance)

    def block(r0: int, r1: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row counts, column indices and distances of rows [r0, r1)."""
        e0, e1 = encoding.indptr[r0], encoding.indptr[r1]
        counts = partners[e0:e1].astype(np.int64)
        total = int(counts.sum())
        if total == 0:
            return (np.zeros(r1 - r0, dtype=np.int64),
                    np.zeros(0, dtype=_index_dtype(n)),
                    np.zeros(0, dtype=np.float32))
        # Positions of all partners: for entry e, csc_pos[e] + 1 + t for
        # t < counts[e], as one repeat plus an arange.
        q = np.repeat(
            csc_pos[e0:e1].astype(np.int64) + 1 - (np.cumsum(counts) - counts),
            counts)
        q += np.arange(total, dtype=np.int64)
        mins = np.repeat(values[e0:e1], counts)
        np.minimum(mins, csc_vals[q], out=mins)
        keys = np.repeat(
            np.arange(r1 - r0, dtype=np.int64) * n, per_row[r0:r1])
        keys += csc_rows[q]
        del q
        words = keys.view(np.uint64)  # non-negative: same bits
        pack_keys((words, mins.view(np.uint32)), _WORD_WIDTHS, out=words)
        del mins
        words.sort()
        keys = unpack_key(words, _WORD_WIDTHS, 0)
        first = np.empty(total, dtype=bool)
        first[0] = True
        np.not_equal(keys[1:], keys[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        # Below 2**33: the same bits as int64, without a copy.
        keys = keys[starts].view(np.int64)
        del first
        contrib = unpack_key(words, _WORD_WIDTHS,
                             1).astype(np.uint32).view(np.float32)
        del words
        overlap = np.add.reduceat(contrib, starts, dtype=np.float64)
        del contrib, starts
        keep = overlap >= min_overlap
        overlap, keys = overlap[keep], keys[keep]
        dist = np.maximum(1.0 - overlap / (2.0 - overlap), 0.0)
        return (np.bincount(keys // n, minlength=r1 - r0),
                (keys % n).astype(_index_dtype(n)), dist.astype(np.float32))

    bounds = _row_blocks(per_row, chunk_size, max_rows)
    spans = list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))
    if num_workers <= 1 or len(spans) <= 1:
        # In this thread: a worker thread would map a malloc arena of its
        # own (64 MB of address space) for nothing.
        results = [block(*span) for span in spans]
    else:
        # numpy's sort, gathers and ufuncs release the GIL, so blocks run
        # in parallel threads (each holding its own working set).
        with ThreadPoolExecutor(max_workers=num_workers) as pool:
            results = list(pool.map(lambda span: block(*span), spans))
    counts_per_row = np.zeros(n, dtype=np.int64)
    for (r0, r1), (counts, _, _) in zip(spans, results):
        counts_per_row[r0:r1] = counts
    pieces_idx = [idx for _, idx, _ in results]
    pieces_val = [val for _, _, val in results]
    del results
    index_dtype = _index_dtype(max(n, int(counts_per_row.sum())))
    indptr = np.zeros(n + 1, dtype=index_dtype)
    np.cumsum(counts_per_row, out=indptr[1:])
    indices = np.concatenate(pieces_idx).astype(
        index_dtype, copy=False) if pieces_idx else np.zeros(
            0, dtype=index_dtype)
    data = np.concatenate(pieces_val) if pieces_val else np.zeros(
        0, dtype=np.float32)
    del pieces_idx, pieces_val
    upper = sp.csr_matrix((data, indices, indptr), shape=(n, n))
    upper.has_sorted_indices = True
    return upper


def _row_sums(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Int64 sums of the rows of a CSR array ``(values, indptr)``, cast a
    slice of rows at a time (numpy's cumsum and reduceat would cast all of
    ``values`` at once)."""
    n = len(indptr) - 1
    out = np.zeros(n, dtype=np.int64)
    step = max(1, int(_SLICE * n / max(int(indptr[-1]), 1)))
    for r0 in range(0, n, step):
        r1 = min(r0 + step, n)
        e0 = int(indptr[r0])
        running = np.zeros(int(indptr[r1]) - e0 + 1, dtype=np.int64)
        np.cumsum(values[e0:indptr[r1]], out=running[1:])
        out[r0:r1] = (running[indptr[r0 + 1:r1 + 1] - e0] -
                      running[indptr[r0:r1] - e0])
    return out


def _index_dtype(maxval: int):
    return np.int32 if maxval < np.iinfo(np.int32).max else np.int64


def _symmetric_with_diagonal(upper: sp.csr_matrix) -> sp.csr_matrix:
    """Mirror a strictly upper CSR and store the diagonal as explicit 0.

    Built directly from index arithmetic instead of ``upper + upper.T``,
    because scipy's arithmetic drops entries equal to zero, and a stored
    zero distance (identical encodings) is a real neighbour.
    """
    n = upper.shape[0]
    lower = upper.T.tocsr()  # CSC -> CSR: sorted indices, zeros kept
    lower.sort_indices()
    n_lower = np.diff(lower.indptr).astype(np.int64)
    n_upper = np.diff(upper.indptr).astype(np.int64)
    total = lower.nnz + upper.nnz + n
    index_dtype = _index_dtype(max(total, n))
    indptr = np.zeros(n + 1, dtype=index_dtype)
    np.cumsum(n_lower + n_upper + 1, out=indptr[1:])
    indices = np.empty(total, dtype=index_dtype)
    data = np.empty(total, dtype=upper.dtype)

    starts = indptr[:-1].astype(np.int64)
    diag = starts + n_lower
    indices[diag] = np.arange(n)
    data[diag] = 0
    for part, before in ((lower, starts), (upper, diag + 1)):
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(part.indptr))
        dest = np.arange(part.nnz, dtype=np.int64)
        dest += (before - part.indptr[:-1])[rows]
        indices[dest] = part.indices
        data[dest] = part.data
        del rows, dest
    out = sp.csr_matrix((data, indices, indptr), shape=(n, n))
    out.has_sorted_indices = True
    return out


def check_jaccard_settings(k1: int, k2: int) -> None:
    """Check the neighbourhood sizes of :func:`jaccard_distance`.

    Raises:
        ValueError: ``k1`` not a positive int, or ``k2`` not an int in
            ``[1, k1]``.
    """
    check_int(k1, 'k1')
    check_int(k2, 'k2')
    if k2 > k1:
        raise ValueError(f'k2 must be in [1, k1={k1}] (need 1 <= k2 <= k1), '
                         f'got {k2}')


def jaccard_distance(features: ArrayLike,
                     k1: int = 30,
                     k2: int = 6,
                     knn: KnnConfig = DEFAULT_KNN,
                     num_threads: Optional[int] = None,
                     neighbours: Optional[Tuple[np.ndarray,
                                                np.ndarray]] = None,
                     max_distance: float = 1.0,
                     chunk_size: int = DEFAULT_CHUNK_SIZE,
                     on_encoding: Optional[Callable[[sp.csr_matrix],
                                                    None]] = None
                     ) -> sp.csr_matrix:
    """Sparse k-reciprocal Jaccard distance between all samples.

    See the module docstring for the formulation (Zhong et al. 2017 as
    cluster contrast uses it). Memory is O(N k1) for the encoding plus the
    size of the result; no N x N dense array is formed.

    Args:
        features (np.ndarray | torch.Tensor): features (N, D); rows are
            L2-normalised here if they are not already.
        k1 (int): neighbours of the k-reciprocal sets. Needs ``N > k1``.
        k2 (int): neighbours of the local query expansion, ``1 <= k2 <= k1``
            (1 disables it).
        knn (str | dict): kNN search; the default ``'pca'`` returns the
            exact neighbours, see
            :func:`~mmreid_rcl.clustering.knn.knn_search` for it, the
            brute-force ``'exact'`` and the approximate ``'hnsw'`` and
            ``'ivf'``.
        num_threads (int, optional): threads of the search (faiss, BLAS)
            and of the Jaccard step; ``None`` uses every available CPU.
        neighbours (tuple[np.ndarray, np.ndarray], optional): a search
            already done, ``(similarities, indices)`` of shape (N, >= k1),
            most similar first; skips the search.
        max_distance (float): keep only pairs at most this far, in (0, 1].
            The default 1.0 keeps every overlapping pair; a clustering that
            only looks within a radius (DBSCAN with ``eps``) gives its
            radius and gets the same result from a much smaller matrix.
        chunk_size (int): bound on the working set of the Jaccard step, in
            pair contributions (about 40 bytes each).
        on_encoding (callable, optional): called with the encoding V once
            it is built, before the pair step (whose memory grows with the
            entries of V); the label generator checks there that the step
            fits in memory.

    Returns:
        scipy.sparse.csr_matrix: float32 (N, N), symmetric, sorted indices.
        Stored entries are the pairs whose encodings overlap (and, with
        ``max_distance < 1``, lie within it), with their distance in
        [0, 1); the diagonal is always stored, as an explicit 0. An absent
        entry means distance 1.0 (no overlap), or with ``max_distance < 1``
        a distance above ``max_distance``. Stored zeros are real entries:
        do not ``eliminate_zeros()`` the result.
    """
    x = as_unit_features(features)
    n = x.shape[0]
    check_jaccard_settings(k1, k2)
    if n <= k1:
        raise ValueError(f'the Jaccard distance needs more samples than '
                         f'k1={k1} neighbours, got N={n}')
    if chunk_size < 1:
        raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
    if not 0 < max_distance <= 1:
        raise ValueError(
            f'max_distance must be in (0, 1], got {max_distance}')

    if neighbours is None:
        nn_sims, nn_indices = knn_search(x, k1, knn, num_threads)
    else:
        nn_sims, nn_indices = (np.asarray(a) for a in neighbours)
        if nn_sims.shape != nn_indices.shape or nn_indices.ndim != 2 or \
                nn_indices.shape[0] != n or nn_indices.shape[1] < k1:
            raise ValueError(
                f'neighbours must be two arrays of shape (N={n}, >= '
                f'k1={k1}), got {nn_sims.shape} and {nn_indices.shape}')
        nn_sims = nn_sims[:, :k1]
        nn_indices = nn_indices[:, :k1].astype(np.int64, copy=False)

    with faiss_num_threads(num_threads):
        encoding = k_reciprocal_encoding(x, nn_sims, nn_indices, k1, k2)
    del nn_sims, nn_indices
    if on_encoding is not None:
        on_encoding(encoding)
    # The Jaccard step works on float32 values: rounding them here frees
    # the float64 array before its per-entry arrays are made.
    encoding.data = encoding.data.astype(np.float32)
    workers = available_cpus() if num_threads is None else num_threads
    upper = upper_jaccard(encoding, max_distance, chunk_size, workers)
    del encoding
    return _symmetric_with_diagonal(upper)
