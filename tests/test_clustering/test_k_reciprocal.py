import numpy as np
import pytest
import scipy.sparse as sp

from mmreid_rcl.clustering.jaccard_distance import upper_jaccard
from mmreid_rcl.clustering.k_reciprocal import (cross_jaccard,
                                                encode_neighbour_lists,
                                                expanded_sets,
                                                k_reciprocal_sets,
                                                overlap_terms, row_blocks)


def neighbour_problem(n=40, width=9, seed=0):
    """Points in a few 2-D blobs, their squared distances (N x N) and
    their neighbour lists (stable sort, ``width`` columns, self first).
    Sample 5's list ends with itself twice, like a padded search."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((4, 2)) * 3
    points = centres[rng.integers(4, size=n)] + rng.standard_normal((n, 2))
    dist = ((points[:, None] - points[None]) ** 2).sum(-1)
    lists = np.argsort(dist, axis=1, kind='stable')[:, :width]
    lists[5, -2:] = 5
    return dist, lists.astype(np.int64)


def dense_reciprocal(lists, i, k):
    m = min(k + 1, lists.shape[1])
    return {int(j) for j in lists[i, :m] if i in lists[j, :m]}


def dense_expanded(lists, k1):
    """E(i) literally: R(i, k1) plus every half set R(c, round(k1 / 2)),
    c in R(i, k1), sharing more than 2/3 of its members with R(i, k1)."""
    half = int(np.around(k1 / 2))
    sets = []
    for i in range(len(lists)):
        r = dense_reciprocal(lists, i, k1)
        e = set(r)
        for c in r:
            rc = dense_reciprocal(lists, c, half)
            if len(rc & r) > 2 / 3 * len(rc):
                e |= rc
        sets.append(sorted(e))
    return sets


def dense_encoding(lists, k1, k2, dist):
    """V as an N x N float64 array, row by row."""
    n = len(lists)
    v = np.zeros((n, n))
    for i, e in enumerate(dense_expanded(lists, k1)):
        w = np.exp(-dist[i, e].astype(np.float64))
        v[i, e] = w / w.sum()
    if k2 > 1:
        m = min(k2, lists.shape[1])
        v = np.stack([v[lists[i, :m]].mean(axis=0) for i in range(n)])
    return v


def dense_jaccard(a, b):
    """``1 - sum min / sum max`` of every row of a with every row of b."""
    mins = np.minimum(a[:, None], b[None]).sum(-1)
    maxs = np.maximum(a[:, None], b[None]).sum(-1)
    return 1 - mins / maxs


@pytest.mark.parametrize('width,k', [(9, 8), (9, 4), (5, 8)])
def test_k_reciprocal_sets_match_dense_reference(width, k):
    _, lists = neighbour_problem(width=width)
    sets = k_reciprocal_sets(lists, min(k + 1, width))
    assert sets.dtype == np.int32 and sets.has_sorted_indices
    dense = np.zeros(sets.shape, dtype=np.int32)
    for i in range(len(lists)):
        dense[i, sorted(dense_reciprocal(lists, i, k))] = 1
    np.testing.assert_array_equal(sets.toarray(), dense)


@pytest.mark.parametrize('width,k1', [(8, 8), (9, 8), (5, 8), (7, 6)])
def test_expanded_sets_match_dense_reference(width, k1):
    # Lists of k1 columns (re-clustering), k1 + 1 (re-ranking) and fewer
    # (re-ranking of fewer samples than k1).
    _, lists = neighbour_problem(width=width, seed=width + k1)
    expanded = expanded_sets(lists, k1)
    assert expanded.has_sorted_indices
    ref = dense_expanded(lists, k1)
    for i, members in enumerate(ref):
        row = expanded.indices[expanded.indptr[i]:expanded.indptr[i + 1]]
        assert row.tolist() == members
    # The expansion both accepted and turned down half sets here.
    grown = sum(len(e) > len(dense_reciprocal(lists, i, k1))
                for i, e in enumerate(ref))
    assert 0 < grown < len(ref)


@pytest.mark.parametrize('dtype,k2,atol', [
    # Same operations in float64 up to the order of the row sums.
    (np.float64, 1, 1e-12),
    (np.float64, 3, 1e-12),
    # exp, normalisation and the mean each round to float32 (unit
    # roundoff 6e-8) on entries at most 1: a few such errors.
    (np.float32, 1, 1e-6),
    (np.float32, 4, 1e-6),
])
def test_encoding_matches_dense_reference(dtype, k2, atol):
    dist, lists = neighbour_problem(width=9, seed=3)
    dist = dist / dist.max(axis=1, keepdims=True)

    def pair_distances(rows, cols):
        return dist[rows, cols].astype(dtype)

    encoding = encode_neighbour_lists(lists, 8, k2, pair_distances)
    assert sp.isspmatrix_csr(encoding) and encoding.dtype == dtype
    assert encoding.has_sorted_indices
    ref = dense_encoding(lists, 8, k2, dist.astype(dtype))
    np.testing.assert_allclose(encoding.toarray(), ref, atol=atol, rtol=0)
    # Stored entries are exactly the non-zero ones of the reference.
    np.testing.assert_array_equal(encoding.toarray() > 0, ref > 0)


def two_groups():
    """Two groups of three: distance 0 to itself, 1 within a group, 2
    across; neighbour lists of 3 columns (self, then by index)."""
    group = np.repeat([0, 1], 3)
    dist = np.where(group[:, None] == group[None], 1.0, 2.0)
    np.fill_diagonal(dist, 0)
    lists = np.argsort(dist, axis=1, kind='stable')[:, :3]
    return dist, lists


def test_hand_computed_encoding_and_jaccard():
    # k1 = 2: R(i, 2) is i's group (lists of 3, all mutual); the half
    # sets (lists of 2) are subsets of it, so E(i) is the group. With
    # e = exp(-1): V[i, i] = a = 1 / (1 + 2e), V[i, j] = b = e / (1 + 2e)
    # for the two others of its group.
    dist, lists = two_groups()
    assert lists[:3].tolist() == [[0, 1, 2], [1, 0, 2], [2, 0, 1]]
    e = np.exp(-1.0)
    a, b = 1 / (1 + 2 * e), e / (1 + 2 * e)

    def pair_distances(rows, cols):
        return dist[rows, cols]

    v = encode_neighbour_lists(lists, 2, 1, pair_distances).toarray()
    expected = np.kron(np.eye(2), np.full((3, 3), b)) + (a - b) * np.eye(6)
    np.testing.assert_allclose(v, expected, atol=1e-15)

    # k2 = 2: row 0 becomes the mean of V[0] and V[1], row 2 of V[2] and
    # V[0]: V'[0] = ((a + b) / 2, (a + b) / 2, b) = V'[1] and
    # V'[2] = ((a + b) / 2, b, (a + b) / 2).
    v2 = encode_neighbour_lists(lists, 2, 2, pair_distances)
    m = (a + b) / 2
    np.testing.assert_allclose(v2[:3, :3].toarray(),
                               [[m, m, b], [m, m, b], [m, b, m]],
                               atol=1e-15)
    # Jaccard of queries 0 and 3 to the gallery 1, 2, 4, 5: identical
    # encodings give 0, other groups share nothing (1), and 0 with 2
    # share s = m + 2 b, so d = 1 - s / (2 - s).
    s = m + 2 * b
    d = 1 - s / (2 - s)
    blocks = list(cross_jaccard(v2[[0, 3]], v2[[1, 2, 4, 5]], 4))
    assert [(start, stop) for start, stop, _ in blocks] == [(0, 1), (1, 2)]
    result = np.concatenate([block for _, _, block in blocks])
    np.testing.assert_allclose(result, [[0, d, 1, 1], [1, 1, 0, d]],
                               atol=1e-15)
    # Without query expansion two members of a group share 3 b.
    s = 3 * b
    (_, _, block), = cross_jaccard(sp.csr_matrix(v[:1]),
                                   sp.csr_matrix(v[1:]), 100)
    np.testing.assert_allclose(block, [[1 - s / (2 - s), 1 - s / (2 - s),
                                        1, 1, 1]], atol=1e-15)


def test_overlap_terms_match_triple_loop():
    rng = np.random.default_rng(1)
    a = sp.random(6, 9, density=0.4, format='csr', random_state=rng,
                  dtype=np.float32)
    b = sp.random(7, 9, density=0.4, format='csc', random_state=rng,
                  dtype=np.float32)
    counts = np.diff(b.indptr).astype(np.int64)[a.indices]
    keys, mins = overlap_terms(a.data, b.indptr[:-1][a.indices], counts,
                               a.indptr, b.indices, b.data, 7)
    assert keys.dtype == np.int64 and mins.dtype == np.float32
    got = sorted(zip((keys // 7).tolist(), (keys % 7).tolist(),
                     mins.tolist()))
    dense_a, dense_b = a.toarray(), b.toarray()
    expected = sorted((i, j, float(min(dense_a[i, k], dense_b[j, k])))
                      for i in range(6) for j in range(7) for k in range(9)
                      if dense_a[i, k] > 0 and dense_b[j, k] > 0)
    assert len(expected) > 20
    assert got == expected  # min picks one float32: exact


def test_cross_and_upper_jaccard_match_dense_reference():
    dist, lists = neighbour_problem(n=60, width=9, seed=4)
    dist = dist / dist.max(axis=1, keepdims=True)

    def pair_distances(rows, cols):
        return dist[rows, cols].astype(np.float32)

    encoding = encode_neighbour_lists(lists, 8, 3, pair_distances)
    dense = encoding.toarray().astype(np.float64)
    ref = dense_jaccard(dense[:20], dense[20:])
    whole = list(cross_jaccard(encoding[:20], encoding[20:], 1 << 20))
    assert len(whole) == 1
    # ``sum max = 2 - sum min`` holds up to the float32 rounding of the
    # rows' sums (a few 6e-8).
    np.testing.assert_allclose(whole[0][2], ref, atol=1e-6, rtol=0)
    assert (ref < 1).any() and (ref == 1).any()
    # In blocks of 3 rows: the same numbers, bit for bit.
    parts = list(cross_jaccard(encoding[:20], encoding[20:], 3 * 40))
    assert [p[:2] for p in parts][:2] == [(0, 3), (3, 6)]
    np.testing.assert_array_equal(
        np.concatenate([p[2] for p in parts]), whole[0][2])
    # upper_jaccard sums the same terms over the pairs i < j; its float32
    # distances are the rounded float64 ones.
    upper = upper_jaccard(encoding, 1.0, chunk_size=50).tocoo()
    full = dense_jaccard(dense, dense)
    assert (upper.row < upper.col).all()
    np.testing.assert_allclose(upper.data, full[upper.row, upper.col],
                               atol=1e-6, rtol=0)
    stored = np.zeros(full.shape, dtype=bool)
    stored[upper.row, upper.col] = True
    iu = np.triu_indices(60, 1)
    np.testing.assert_array_equal(stored[iu], full[iu] < 1 - 1e-6)


def test_row_blocks_cover_the_rows():
    rng = np.random.default_rng(2)
    per_row = rng.integers(0, 50, size=200)
    bounds = row_blocks(per_row, 120, 7)
    assert bounds[0] == 0 and bounds[-1] == 200
    assert (np.diff(bounds) > 0).all() and (np.diff(bounds) <= 7).all()
    for r0, r1 in zip(bounds[:-1], bounds[1:]):
        # Cuts fall where the running total passes a multiple of the
        # budget: a block exceeds it by at most its first row.
        assert per_row[r0 + 1:r1].sum() <= 120
