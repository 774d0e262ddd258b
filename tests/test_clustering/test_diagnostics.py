import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from mmreid_rcl.clustering import cluster_quality


def test_hand_computed():
    labels = np.array([0, 0, 0, 1, 1, -1])
    true = np.array([5, 5, 6, 7, 7, 7])
    q = cluster_quality(labels, true)
    assert q['num_clusters'] == 2 and q['num_outliers'] == 1
    # Cluster 0 holds 5, 5, 6 (majority 2), cluster 1 holds 7, 7 (2):
    # 4 of the 5 clustered samples carry their cluster's majority id.
    assert q['purity'] == pytest.approx(0.8)
    assert q['nmi'] == pytest.approx(
        normalized_mutual_info_score(true[:5], labels[:5]))
    assert q['ari'] == pytest.approx(
        adjusted_rand_score(true[:5], labels[:5]))
    # Over all samples the outlier is a cluster of its own.
    assert q['ari_all'] == pytest.approx(
        adjusted_rand_score(true, [0, 0, 0, 1, 1, 2]))


def test_perfect_and_degenerate():
    true = np.repeat(np.arange(4), 3)
    q = cluster_quality(true[::-1] + 10, true)  # names do not matter
    # Purity (12 / 12) and ARI (identical partitions) are exactly 1; NMI
    # divides two sums of logarithms, equal only up to float64 rounding.
    assert q['purity'] == q['ari'] == q['ari_all'] == 1.0
    assert q['nmi'] == pytest.approx(1.0, abs=1e-12)
    q = cluster_quality(np.full(6, -1), np.arange(6))
    assert q['num_clusters'] == 0 and q['num_outliers'] == 6
    assert q['purity'] == q['nmi'] == q['ari'] == 0.0
    # Every sample its own cluster matches all-distinct true ids.
    assert q['ari_all'] == 1.0


def test_shape_mismatch():
    with pytest.raises(ValueError, match='same length'):
        cluster_quality([0, 1], [0, 1, 2])
