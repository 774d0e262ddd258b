"""Sparse k-reciprocal Jaccard distance between all samples.

The k-reciprocal encoding of :mod:`.k_reciprocal` in the form the
cluster-contrast baseline clusters with (k1=30, k2=6): for L2-normalised
features x (N x D) the neighbour lists ``knn(i)`` are the ``k1`` nearest
samples of i, i itself included (first), and the distance is
``d(i, j) = 2 - 2 x_i . x_j``. Because ``knn`` holds ``k1`` samples,
``R(i, k1)`` is drawn from those ``k1`` (the sample and its ``k1 - 1``
nearest others), exactly as cluster contrast computes it, and the half set
``R(i, round(k1 / 2))`` from the first ``round(k1 / 2) + 1``.

Everything is kept sparse: V has O(N k1) entries, and only the pairs whose
encodings overlap (``s > 0``, i.e. ``d_J < 1``) are ever formed. The public
implementation fills three dense N x N matrices with per-sample Python loops;
here each step is a sparse product or a vectorised segment operation.
"""
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Callable, NamedTuple, Optional, Tuple, Union

import numpy as np
import scipy.sparse as sp
import torch

from mmreid_rcl.utils.sort_keys import KEY_BITS, pack_keys, unpack_key
from mmreid_rcl.utils.threads import available_cpus, faiss_num_threads
from mmreid_rcl.utils.validation import check_int
from .k_reciprocal import (encode_neighbour_lists, index_dtype,
                           jaccard_from_overlap, overlap_terms, row_blocks)
from .knn import DEFAULT_KNN, KnnConfig, knn_search, pair_inner_products

ArrayLike = Union[np.ndarray, torch.Tensor]

# Pair contributions of the Jaccard step handled at once (~40 bytes each).
DEFAULT_CHUNK_SIZE = 1 << 19
# Pairs of the encoding whose similarity is looked up at once (about 50
# bytes each).
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


def _squared_distances(rows: np.ndarray, cols: np.ndarray, x: np.ndarray,
                       nn_sims: np.ndarray,
                       nn_indices: np.ndarray) -> np.ndarray:
    """``d = 2 - 2 x[rows] . x[cols]`` (float64) of the pairs."""
    dist = _pair_similarities(x, rows, cols, nn_sims, nn_indices)
    # In place: no temporaries of this size.
    dist *= -2.0
    dist += 2.0
    return dist


def k_reciprocal_encoding(x: np.ndarray, nn_sims: np.ndarray,
                          nn_indices: np.ndarray, k1: int,
                          k2: int) -> sp.csr_matrix:
    """The encoding V of unit features and their neighbour lists.

    Args:
        x (np.ndarray): unit features (N, D) float32.
        nn_sims (np.ndarray): kNN similarities (N, k1), most similar first.
        nn_indices (np.ndarray): kNN indices (N, k1) int64.
        k1 (int): size of the neighbour lists.
        k2 (int): neighbours averaged by the local query expansion.

    Returns:
        sp.csr_matrix: V (see
        :func:`~mmreid_rcl.clustering.k_reciprocal.encode_neighbour_lists`),
        (N, N) float64 with sorted indices, rows summing to one (rows of a
        sample with an empty reciprocal set are empty).
    """
    # exp(-d) with d = 2 - 2 s lies in [e^-4, 1]: no overflow, and the
    # softmax needs no shift.
    return encode_neighbour_lists(
        nn_indices[:, :k1], k1, k2,
        partial(_squared_distances, x=x, nn_sims=nn_sims,
                nn_indices=nn_indices))


# Pair contributions are summed by sorting 64-bit words that hold the pair
# (high bits) and the float32 contribution (low 31 bits; it is positive, so
# its sign bit is free): one vectorised sort of plain integers instead of a
# sort of (index, value) records.
_VALUE_BITS = 31
_WORD_WIDTHS = (KEY_BITS - _VALUE_BITS, _VALUE_BITS)
# Entries handled at once where a full-size temporary is not needed.
_SLICE = 1 << 20


class _Columns(NamedTuple):
    """V column by column, for the pairs i < j that share a column.

    ``rows`` and ``values`` are V's entries in CSC order; for every CSR
    entry, ``pos`` is its CSC position and ``partners`` the entries after
    it in its column (rows ascend within a column, so those are its
    partners j > i). ``row_values`` are V's float32 values in CSR order.
    """
    rows: np.ndarray
    values: np.ndarray
    pos: np.ndarray
    partners: np.ndarray
    row_values: np.ndarray


def _columns(encoding: sp.csr_matrix) -> _Columns:
    """The column layout of V, in the narrowest index type (at 100k
    samples its per-entry arrays hold about 8M entries each)."""
    nnz = encoding.nnz
    pos_dtype = index_dtype(nnz)
    # The CSC layout of V with, as data, the CSR position of every entry:
    # a linear-time transpose done by scipy instead of a sort.
    by_col = sp.csr_matrix(
        (np.arange(nnz, dtype=pos_dtype), encoding.indices, encoding.indptr),
        shape=encoding.shape).tocsc()
    # No copy when the caller already gave float32 values.
    row_values = np.asarray(encoding.data, dtype=np.float32)
    values = row_values[by_col.data]
    pos = np.empty(nnz, dtype=pos_dtype)
    # The inverse permutation, a slice at a time (no full-size arange).
    for start in range(0, nnz, _SLICE):
        pos[by_col.data[start:start + _SLICE]] = np.arange(
            start, min(start + _SLICE, nnz), dtype=pos_dtype)
    partners = by_col.indptr[1:].astype(pos_dtype)[encoding.indices]
    partners -= pos
    partners -= 1
    return _Columns(by_col.indices, values, pos, partners, row_values)


def _sum_packed_terms(words: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Sort packed (pair, contribution) words in place and sum each pair.

    Each pair's contributions are summed in ascending order, so the sums
    do not depend on how the pairs were split into blocks.

    Returns:
        tuple[np.ndarray, np.ndarray]: the pair keys (int64, ascending) and
        their float64 sums.
    """
    words.sort()
    keys = unpack_key(words, _WORD_WIDTHS, 0)
    first = np.empty(len(words), dtype=bool)
    first[0] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    del first
    # Below 2**33: the same bits as int64, without a copy.
    keys = keys[starts].view(np.int64)
    contrib = unpack_key(words, _WORD_WIDTHS,
                         1).astype(np.uint32).view(np.float32)
    return keys, np.add.reduceat(contrib, starts, dtype=np.float64)


def _upper_block(encoding: sp.csr_matrix, columns: _Columns,
                 min_overlap: float, r0: int,
                 r1: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row counts, column indices and distances of rows [r0, r1) of the
    upper triangle."""
    n = encoding.shape[0]
    e0, e1 = encoding.indptr[r0], encoding.indptr[r1]
    counts = columns.partners[e0:e1].astype(np.int64)
    if not counts.any():
        return (np.zeros(r1 - r0, dtype=np.int64),
                np.zeros(0, dtype=index_dtype(n)),
                np.zeros(0, dtype=np.float32))
    keys, mins = overlap_terms(columns.row_values[e0:e1],
                               columns.pos[e0:e1] + 1, counts,
                               encoding.indptr[r0:r1 + 1] - e0,
                               columns.rows, columns.values, n)
    del counts
    words = keys.view(np.uint64)  # non-negative: same bits
    pack_keys((words, mins.view(np.uint32)), _WORD_WIDTHS, out=words)
    del keys, mins
    keys, overlap = _sum_packed_terms(words)
    del words
    keep = overlap >= min_overlap
    overlap, keys = overlap[keep], keys[keep]
    return (np.bincount(keys // n, minlength=r1 - r0),
            (keys % n).astype(index_dtype(n)),
            jaccard_from_overlap(overlap).astype(np.float32))


def _assemble_upper(n: int, results: list) -> sp.csr_matrix:
    """The CSR (N, N) of the ``(counts, indices, distances)`` of blocks of
    consecutive rows covering all N; each block's pairs come out sorted,
    so no further sort is needed."""
    counts_per_row = np.concatenate(
        [np.zeros(0, dtype=np.int64)] + [counts for counts, _, _ in results])
    pieces_idx = [idx for _, idx, _ in results]
    pieces_val = [val for _, _, val in results]
    del results
    dtype = index_dtype(max(n, int(counts_per_row.sum())))
    indptr = np.zeros(n + 1, dtype=dtype)
    np.cumsum(counts_per_row, out=indptr[1:])
    indices = np.concatenate(pieces_idx).astype(
        dtype, copy=False) if pieces_idx else np.zeros(0, dtype=dtype)
    data = np.concatenate(pieces_val) if pieces_val else np.zeros(
        0, dtype=np.float32)
    del pieces_idx, pieces_val
    upper = sp.csr_matrix((data, indices, indptr), shape=(n, n))
    upper.has_sorted_indices = True
    return upper


def upper_jaccard(encoding: sp.csr_matrix,
                  max_distance: float = 1.0,
                  chunk_size: int = DEFAULT_CHUNK_SIZE,
                  num_workers: int = 1) -> sp.csr_matrix:
    """Jaccard distance of every pair i < j whose encodings overlap.

    Every column k of V pairs up the samples that put weight on it; each
    such pair (i < j) contributes ``min(V[i, k], V[j, k])`` to ``s(i, j)``
    (:func:`~mmreid_rcl.clustering.k_reciprocal.overlap_terms`). The
    contributions are summed per pair, block of rows by block of rows so
    that about ``chunk_size`` contributions exist at once.

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
    columns = _columns(encoding)
    per_row = _row_sums(columns.partners, encoding.indptr)
    # The pair key (row in block) * N + col must fit the high 33 bits.
    max_rows = max(1, (1 << _WORD_WIDTHS[0]) // n)
    # d <= max_distance  <=>  s >= 2 (1 - max_distance) / (2 - max_distance)
    min_overlap = 2 * (1 - max_distance) / (2 - max_distance)
    bounds = row_blocks(per_row, chunk_size, max_rows)
    block = partial(_upper_block, encoding, columns, min_overlap)
    starts, stops = bounds[:-1].tolist(), bounds[1:].tolist()
    if num_workers <= 1 or len(starts) <= 1:
        # In this thread: a worker thread would map a malloc arena of its
        # own (64 MB of address space) for nothing.
        results = list(map(block, starts, stops))
    else:
        # numpy's sort, gathers and ufuncs release the GIL, so blocks run
        # in parallel threads (each holding its own working set).
        with ThreadPoolExecutor(max_workers=num_workers) as pool:
            results = list(pool.map(block, starts, stops))
    del columns
    return _assemble_upper(n, results)


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
    dtype = index_dtype(max(total, n))
    indptr = np.zeros(n + 1, dtype=dtype)
    np.cumsum(n_lower + n_upper + 1, out=indptr[1:])
    indices = np.empty(total, dtype=dtype)
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


def _neighbour_lists(neighbours: Tuple[np.ndarray, np.ndarray], n: int,
                     k1: int) -> Tuple[np.ndarray, np.ndarray]:
    """The first ``k1`` columns of a search's ``(similarities, indices)``,
    indices as int64 (no copies for a search of ``k1`` neighbours)."""
    nn_sims, nn_indices = (np.asarray(a) for a in neighbours)
    if nn_sims.shape != nn_indices.shape or nn_indices.ndim != 2 or \
            nn_indices.shape[0] != n or nn_indices.shape[1] < k1:
        raise ValueError(
            f'neighbours must be two arrays of shape (N={n}, >= '
            f'k1={k1}), got {nn_sims.shape} and {nn_indices.shape}')
    return nn_sims[:, :k1], nn_indices[:, :k1].astype(np.int64, copy=False)


def _check_jaccard_arguments(n: int, k1: int, k2: int, max_distance: float,
                             chunk_size: int) -> None:
    """Check the settings of :func:`jaccard_distance` for N samples."""
    check_jaccard_settings(k1, k2)
    if n <= k1:
        raise ValueError(f'the Jaccard distance needs more samples than '
                         f'k1={k1} neighbours, got N={n}')
    if chunk_size < 1:
        raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
    if not 0 < max_distance <= 1:
        raise ValueError(
            f'max_distance must be in (0, 1], got {max_distance}')


def _encoding_of(x: np.ndarray, k1: int, k2: int, knn: KnnConfig,
                 num_threads: Optional[int],
                 neighbours: Optional[Tuple[np.ndarray, np.ndarray]]
                 ) -> sp.csr_matrix:
    """The k-reciprocal encoding V of unit features ``x``, searching their
    neighbours unless ``neighbours`` are given."""
    if neighbours is None:
        neighbours = knn_search(x, k1, knn, num_threads)
    nn_sims, nn_indices = _neighbour_lists(neighbours, x.shape[0], k1)
    del neighbours
    with faiss_num_threads(num_threads):
        return k_reciprocal_encoding(x, nn_sims, nn_indices, k1, k2)


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

    See the module docstrings (here and of :mod:`.k_reciprocal`) for the
    formulation (Zhong et al. 2017 as cluster contrast uses it). Memory is
    O(N k1) for the encoding plus the size of the result; no N x N dense
    array is formed.

    Args:
        features (np.ndarray | torch.Tensor): features (N, D); rows are
            L2-normalised here if they are not already.
        k1 (int): neighbours of the k-reciprocal sets. Needs ``N > k1``.
        k2 (int): neighbours of the local query expansion, ``1 <= k2 <= k1``
            (1 disables it).
        knn (str | dict): kNN search; the default ``'auto'`` returns the
            exact neighbours (by brute force or the verified ``'pca'``),
            see :func:`~mmreid_rcl.clustering.knn.knn_search` for it, the
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
    _check_jaccard_arguments(n, k1, k2, max_distance, chunk_size)
    encoding = _encoding_of(x, k1, k2, knn, num_threads, neighbours)
    if on_encoding is not None:
        on_encoding(encoding)
    # The Jaccard step works on float32 values: rounding them here frees
    # the float64 array before its per-entry arrays are made.
    encoding.data = encoding.data.astype(np.float32)
    workers = available_cpus() if num_threads is None else num_threads
    upper = upper_jaccard(encoding, max_distance, chunk_size, workers)
    del encoding
    return _symmetric_with_diagonal(upper)
