import tracemalloc

import faiss
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.cluster import DBSCAN

from mmreid_rcl.clustering import (dbscan_labels, jaccard_distance,
                                   k_reciprocal_encoding, k_reciprocal_sets,
                                   knn_search, relabel_by_first_member)
from mmreid_rcl.clustering.jaccard_distance import (_pair_similarities,
                                                    _row_sums, upper_jaccard)
from mmreid_rcl.clustering.k_reciprocal import _expanded_sets


def clustered_features(n, num_ids, dim=64, spread=0.5, noisy=0.0, seed=0):
    """Unit features around ``num_ids`` random centres, shuffled; a share
    ``noisy`` of the samples gets three times the spread."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_ids, dim))
    ids = rng.integers(num_ids, size=n)
    scale = np.where(rng.random(n) < noisy, 3 * spread, spread)
    x = centres[ids] + scale[:, None] * rng.standard_normal((n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), ids


def dense_reference(x, k1, k2):
    """Literal per-sample k-reciprocal Jaccard distance, dense N x N.

    Follows the public cluster-contrast code step by step: a ranking of
    ``k1`` columns (self included), forward lists ``rank[i, :k + 1]`` (cut
    at the ``k1`` columns there are), expansion by the half sets that
    overlap by more than 2/3, softmax of -d, mean over the k2 nearest, and
    ``1 - sum min / sum max``.
    """
    x = x.astype(np.float64)
    n = len(x)
    dist = 2 - 2 * x @ x.T
    rank = np.argsort(dist, axis=1, kind='stable')[:, :k1]

    def reciprocal(i, k):
        forward = rank[i, :k + 1]
        backward = rank[forward, :k + 1]
        return forward[[i in row for row in backward]]

    half = int(np.around(k1 / 2))
    v = np.zeros((n, n))
    for i in range(n):
        r = reciprocal(i, k1)
        expanded = list(r)
        for c in r:
            rc = reciprocal(c, half)
            if len(np.intersect1d(rc, r)) > 2 / 3 * len(rc):
                expanded.extend(rc)
        e = np.unique(expanded)
        w = np.exp(-dist[i, e])
        v[i, e] = w / w.sum()
    if k2 > 1:
        v = np.stack([v[rank[i, :k2]].mean(axis=0) for i in range(n)])
    jac = np.empty((n, n))
    for i in range(n):
        mins = np.minimum(v[i], v).sum(axis=1)
        maxs = np.maximum(v[i], v).sum(axis=1)
        jac[i] = 1 - mins / maxs
    return np.maximum(jac, 0)


@pytest.mark.parametrize('k1,k2,noisy', [(20, 6, 0.0), (30, 6, 0.0),
                                         (15, 1, 0.0), (9, 4, 0.0),
                                         (30, 6, 0.3)])
def test_matches_dense_reference(k1, k2, noisy):
    # The float64 reference and the float32 search must rank alike: with
    # these seeds neighbours next to a cut (k2, k1 / 2 + 1, k1) differ in
    # cosine by 5e-6 or more, far above float32 rounding of 64-term
    # products (~1e-7); seed k1 + k2 had a pair only 5e-7 apart.
    x, _ = clustered_features(
        300, 15, spread=0.5 + noisy, noisy=noisy, seed=k1 + k2 + 3)
    ref = dense_reference(x, k1, k2)
    dist = jaccard_distance(x, k1=k1, k2=k2)

    assert sp.isspmatrix_csr(dist) and dist.shape == (300, 300)
    assert dist.dtype == np.float32 and dist.has_sorted_indices
    coo = dist.tocoo()
    # Kept pairs carry the reference distance.
    np.testing.assert_allclose(coo.data, ref[coo.row, coo.col], atol=1e-5)
    # Absent pairs are exactly the pairs the reference puts at 1.
    stored = np.zeros(ref.shape, dtype=bool)
    stored[coo.row, coo.col] = True
    assert (ref[~stored] >= 1 - 1e-6).all()
    assert (ref[stored] < 1 - 1e-6).all()
    # Symmetric, with the diagonal stored as 0.
    assert (dist != dist.T).nnz == 0
    assert stored.diagonal().all() and (dist.diagonal() == 0).all()
    # Some pairs are absent: not an all-pairs matrix.
    assert 300 * 5 < dist.nnz < 300 * 300


def test_dbscan_matches_dense_reference():
    # Noisy clusters: DBSCAN finds the 15 ids and leaves some outliers.
    x, _ = clustered_features(300, 15, spread=0.8, noisy=0.3, seed=11)
    ref = dense_reference(x, 20, 6)
    ref_labels = DBSCAN(
        eps=0.6, min_samples=4, metric='precomputed').fit_predict(ref)
    labels = dbscan_labels(jaccard_distance(x, k1=20, k2=6), 0.6, 4)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels,
                                  relabel_by_first_member(ref_labels))
    assert labels.max() + 1 >= 10 and 5 <= (labels < 0).sum() <= 60


def test_max_distance_keeps_the_near_pairs():
    x, _ = clustered_features(300, 15, spread=0.8, noisy=0.3, seed=2)
    full = jaccard_distance(x, k1=20, k2=6).tocoo()
    near = jaccard_distance(x, k1=20, k2=6, max_distance=0.6).tocoo()
    keep = full.data <= 0.6
    assert 300 < near.nnz < full.nnz
    # Exact: the same search and sums, only filtered (no distance lies
    # within 1e-4 of the cut, so float32 rounding cannot move one across).
    np.testing.assert_array_equal(near.row, full.row[keep])
    np.testing.assert_array_equal(near.col, full.col[keep])
    np.testing.assert_array_equal(near.data, full.data[keep])
    with pytest.raises(ValueError, match='max_distance'):
        jaccard_distance(x, k1=20, max_distance=0)


def test_hand_computed_two_groups():
    # Two groups of g = 4 samples, x = (c + e_m) / sqrt(2) with c and all
    # e_m orthonormal: cos = 1/2 inside a group (d = 2 - 2 cos = 1) and 0
    # across (d = 2). With k1 = 4 the neighbour list of a sample is its
    # group, so every expanded set is the group.
    g = 4
    basis = np.eye(2 + 2 * g, dtype=np.float32)
    x = np.stack([(basis[grp] + basis[2 + grp * g + m]) / np.sqrt(2)
                  for grp in range(2) for m in range(g)])
    group = np.repeat([0, 1], g)
    same = group[:, None] == group[None, :]

    # k2 = 1: V[i, i] = 1 / Z, V[i, j] = e / Z for the 3 others of its
    # group, with e = exp(-1) and Z = 1 + 3e. For i != j in a group the
    # sum of minima is 4e / Z, and d = 1 - s / (2 - s).
    e = np.exp(-1.0)
    s = 4 * e / (1 + 3 * e)
    d_within = 1 - s / (2 - s)  # = 0.46211...
    coo = jaccard_distance(x, k1=g, k2=1).tocoo()
    stored = np.zeros_like(same)
    stored[coo.row, coo.col] = True
    np.testing.assert_array_equal(stored, same)  # across groups: absent
    expected = np.where(coo.row == coo.col, 0.0, d_within)
    np.testing.assert_allclose(coo.data, expected, atol=1e-6)

    # k2 = k1 = g: the query expansion averages the whole group, so the
    # encodings of a group coincide (uniform 1/4) and d = 0 inside it;
    # those zeros are stored entries (an absent one would mean 1.0).
    dist = jaccard_distance(x, k1=g, k2=g)
    assert dist.nnz == 2 * g * g
    coo = dist.tocoo()
    assert (group[coo.row] == group[coo.col]).all()
    np.testing.assert_allclose(coo.data, 0, atol=1e-6)


def test_inputs_and_options_agree():
    x, _ = clustered_features(200, 10, seed=5)
    base = jaccard_distance(x, k1=20, k2=6)
    # Un-normalised float64 tensors are normalised first.
    scaled = torch.from_numpy(x.astype(np.float64) * 3.0)
    other = jaccard_distance(scaled, k1=20, k2=6)
    assert abs(base - other).max() < 1e-5
    # Tiny chunks (many blocks, in one or two threads) and a precomputed
    # search change nothing, bit for bit: the search is the same brute-force
    # product (k only sizes the heap) and every pair's contributions are
    # summed in sorted order whatever the chunks and threads.
    for threads in (1, 2):
        chunked = jaccard_distance(
            x, k1=20, k2=6, chunk_size=7, num_threads=threads,
            neighbours=knn_search(x, 25))
        assert (chunked != base).nnz == 0
    # An approximate search with generous parameters finds the same
    # neighbours on this easy data.
    for knn in ('hnsw', dict(type='ivf', nlist=8, nprobe=8)):
        approx = jaccard_distance(x, k1=20, k2=6, knn=knn, num_threads=1)
        assert abs(approx - base).max() < 1e-5


def test_pca_search_is_exact_on_low_rank_features():
    # Features of rank 16 in 64 dimensions: 16 principal axes lose
    # nothing, so the search finds the exact neighbours.
    z, _ = clustered_features(300, 10, dim=16, seed=4)
    embed = np.linalg.qr(np.random.default_rng(0).standard_normal(
        (64, 16)))[0].T
    x = (z @ embed).astype(np.float32)
    sims, idx = knn_search(x, 20)
    pca_sims, pca_idx = knn_search(x, 20, dict(type='pca', dim=16))
    np.testing.assert_array_equal(pca_idx, idx)
    np.testing.assert_allclose(pca_sims, sims, atol=1e-5)
    with pytest.raises(ValueError, match='refine'):
        knn_search(x, 20, dict(type='pca', refine=0))


def test_faiss_threads_are_restored():
    x, _ = clustered_features(100, 5)
    before = faiss.omp_get_max_threads()
    jaccard_distance(x, k1=10, num_threads=1)
    assert faiss.omp_get_max_threads() == before
    with pytest.raises(ValueError, match='num_threads'):
        jaccard_distance(x, k1=10, num_threads=0)
    assert faiss.omp_get_max_threads() == before


def test_memory_is_linear_in_n():
    # Same cluster sizes (about 20) at N and 4 N: entries per row stay put
    # and the traced (numpy) peak grows about 4 times, not 16 times; at
    # 6000 it is a small fraction of one dense N x N float64 (288 MB).
    per_row, peaks = [], []
    for n in (1500, 6000):
        x, _ = clustered_features(n, n // 20, dim=32, seed=n)
        tracemalloc.start()
        dist = jaccard_distance(x, k1=20, k2=6, chunk_size=1 << 16)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        per_row.append(dist.nnz / n)
        assert dist.nnz <= 5 * 20 * n
    assert per_row[1] < 1.3 * per_row[0]
    assert peaks[1] < 6 * peaks[0]
    assert peaks[1] < 6000 * 6000 * 8 / 10


def test_bad_inputs():
    x, _ = clustered_features(50, 5)
    with pytest.raises(ValueError, match='2-D'):
        jaccard_distance(x[0], k1=10)
    with pytest.raises(ValueError, match='2-D'):
        jaccard_distance(x[None], k1=10)
    with pytest.raises(ValueError, match='more samples than k1=50'):
        jaccard_distance(x, k1=50)
    with pytest.raises(ValueError, match='k2 must be in'):
        jaccard_distance(x, k1=10, k2=11)
    with pytest.raises(ValueError, match='NaN'):
        jaccard_distance(np.full((50, 4), np.nan), k1=5)
    with pytest.raises(ValueError, match='all-zero rows'):
        jaccard_distance(np.zeros((50, 4)), k1=5)
    with pytest.raises(ValueError, match='unknown knn method'):
        jaccard_distance(x, k1=10, knn='kdtree')
    with pytest.raises(ValueError, match='unknown parameters'):
        jaccard_distance(x, k1=10, knn=dict(type='hnsw', nprobe=3))
    with pytest.raises(ValueError, match='neighbours must be'):
        jaccard_distance(x, k1=10, neighbours=knn_search(x, 5))


def test_blocks_of_the_encoding_change_nothing():
    # The expansion in small blocks and the pair step in one thread or
    # three give the same matrices bit for bit (integer counts, numpy's
    # sorted sums); the similarity lookup in blocks the same values.
    x, _ = clustered_features(600, 30, noisy=0.3, seed=2)
    sims, idx = knn_search(x, 20)
    r_full = k_reciprocal_sets(idx, 20)
    r_half = k_reciprocal_sets(idx, 11)
    whole = _expanded_sets(r_full, r_half, block_size=1 << 30)
    for block_size in (1, 500):
        part = _expanded_sets(r_full, r_half, block_size=block_size)
        assert (part != whole).nnz == 0
        np.testing.assert_array_equal(part.indptr, whole.indptr)
        np.testing.assert_array_equal(part.indices, whole.indices)
    rows = np.repeat(np.arange(600), np.diff(whole.indptr))
    ref = _pair_similarities(x, rows, whole.indices, sims, idx,
                             block_size=1 << 30)
    np.testing.assert_allclose(
        _pair_similarities(x, rows, whole.indices, sims, idx,
                           block_size=77), ref, atol=1e-6)
    np.testing.assert_allclose(
        ref, np.einsum('nd,nd->n', x[rows], x[whole.indices]), atol=1e-6)
    # Row sums of a CSR with empty rows, against a plain loop.
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 4, size=300)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    values = rng.integers(0, 2**31 - 1, size=indptr[-1]).astype(np.int32)
    expected = [int(values[a:b].astype(np.int64).sum())
                for a, b in zip(indptr[:-1], indptr[1:])]
    assert _row_sums(values, indptr).tolist() == expected
    encoding = k_reciprocal_encoding(x, sims, idx, 20, 6)
    one = upper_jaccard(encoding, 0.8, chunk_size=1000, num_workers=1)
    three = upper_jaccard(encoding, 0.8, chunk_size=1000, num_workers=3)
    assert (one != three).nnz == 0 and one.nnz > 600
