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


def _slow_cross_camera_recall(labels, ids, cams):
    hit = total = 0
    n = len(labels)
    for i in range(n):
        for j in range(i + 1, n):
            if labels[i] < 0 or labels[j] < 0:
                continue
            if ids[i] == ids[j] and cams[i] != cams[j]:
                total += 1
                hit += labels[i] == labels[j]
    return hit / total if total else float('nan')


def test_cross_camera_recall_hand_case_and_reference():
    from mmreid_rcl.clustering.diagnostics import cross_camera_recall

    # Person 0: two images per camera, clustered by camera (pure, split):
    # none of its 4 cross-camera pairs is joined. Person 1: one cluster
    # over both cameras: its 2 cross-camera pairs are joined.
    labels = [0, 0, 1, 1, 2, 2, 2]
    ids = [0, 0, 0, 0, 1, 1, 1]
    cams = [0, 0, 1, 1, 0, 1, 1]
    assert cross_camera_recall(labels, ids, cams) == pytest.approx(2 / 6)
    # Outliers are left out; no cross-camera pair at all gives NaN.
    assert cross_camera_recall([0, -1], [5, 5], [0, 1]) != \
        cross_camera_recall([0, -1], [5, 5], [0, 1])
    rng = np.random.default_rng(0)
    for _ in range(5):
        labels = rng.integers(-1, 6, 60)
        ids = rng.integers(0, 8, 60)
        cams = rng.integers(0, 3, 60)
        assert cross_camera_recall(labels, ids, cams) == pytest.approx(
            _slow_cross_camera_recall(labels, ids, cams))
    with pytest.raises(ValueError, match='same length'):
        cross_camera_recall([0, 1], [0, 1], [0])
