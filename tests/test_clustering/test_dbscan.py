import numpy as np
import pytest
import scipy.sparse as sp

from mmreid_rcl.clustering import dbscan_labels, relabel_by_first_member


def sparse_distance(n, pairs):
    """Symmetric CSR with the given ``(i, j, d)`` entries and a 0 diagonal;
    values are stored as given, zeros included."""
    rows = [i for i, j, _ in pairs] + [j for i, j, _ in pairs]
    cols = [j for i, j, _ in pairs] + [i for i, j, _ in pairs]
    vals = [d for *_, d in pairs] * 2
    rows += list(range(n))
    cols += list(range(n))
    vals += [0.0] * n
    return sp.csr_matrix((np.array(vals, dtype=np.float32), (rows, cols)),
                         shape=(n, n))


def test_hand_computed_clusters():
    # 0-1-2 chained within eps, 3-4 within eps, 5 only at 0.7 from 4 and
    # 6 at 0.95 from 0: with min_samples=2 (self included) 0..4 are core,
    # 5 and 6 are outliers.
    dist = sparse_distance(
        7, [(0, 1, 0.2), (1, 2, 0.3), (3, 4, 0.5), (4, 5, 0.7),
            (0, 6, 0.95)])
    labels = dbscan_labels(dist, eps=0.6, min_samples=2)
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, -1, -1])
    # min_samples=3: only 1 (with 0 and 2) is core; 0 and 2 join it as
    # border samples; 3 and 4 have two neighbours each.
    labels = dbscan_labels(dist, eps=0.6, min_samples=3)
    np.testing.assert_array_equal(labels, [0, 0, 0, -1, -1, -1, -1])
    # The same distances as a dense matrix (absent = 1.0) agree.
    dense = np.where(dist.toarray() > 0, dist.toarray(), 1.0)
    np.fill_diagonal(dense, 0)
    np.testing.assert_array_equal(
        dbscan_labels(dense, eps=0.6, min_samples=2),
        dbscan_labels(dist, eps=0.6, min_samples=2))


def test_stored_zero_is_a_neighbour():
    dist = sparse_distance(4, [(1, 3, 0.0)])
    assert dist.nnz == 6  # the zero is stored
    labels = dbscan_labels(dist, eps=0.5, min_samples=2)
    np.testing.assert_array_equal(labels, [-1, 0, -1, 0])
    # Without the stored entry the pair is at distance 1: no cluster.
    labels = dbscan_labels(sparse_distance(4, []), eps=0.5, min_samples=2)
    np.testing.assert_array_equal(labels, [-1, -1, -1, -1])


def test_labels_follow_smallest_member():
    # The cluster holding sample 0 is numbered first whatever the order
    # the clusters were found in.
    dist = sparse_distance(6, [(4, 5, 0.1), (5, 0, 0.1), (1, 3, 0.1)])
    labels = dbscan_labels(dist, eps=0.5, min_samples=2)
    np.testing.assert_array_equal(labels, [0, 1, -1, 1, 0, 0])
    np.testing.assert_array_equal(
        relabel_by_first_member([3, 3, -1, 0, 7, 0]), [0, 0, -1, 1, 2, 1])
    np.testing.assert_array_equal(
        relabel_by_first_member([-1, -1]), [-1, -1])


@pytest.mark.parametrize('eps', [1.0, 1.5, 0.0, -0.1])
def test_eps_must_be_below_one(eps):
    with pytest.raises(ValueError, match='eps must be in'):
        dbscan_labels(sparse_distance(3, []), eps=eps, min_samples=2)


def test_bad_arguments():
    with pytest.raises(ValueError, match='min_samples'):
        dbscan_labels(sparse_distance(3, []), eps=0.5, min_samples=0)
    with pytest.raises(ValueError, match='square'):
        dbscan_labels(sp.csr_matrix((3, 4)), eps=0.5, min_samples=2)
