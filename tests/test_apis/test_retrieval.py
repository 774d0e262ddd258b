import numpy as np
import pytest

from mmreid_rcl.apis import (average_precision_per_query, protocol_exclusion,
                             rank_distances, rank_gallery)
from mmreid_rcl.evaluation import compute_distance, evaluate_rank


def slow_distance(q, g):
    """Squared euclidean distance of normalised rows, one pair at a time."""
    out = np.empty((len(q), len(g)))
    for i, a in enumerate(q):
        for j, b in enumerate(g):
            a_n = a / np.sqrt(np.sum(a * a))
            b_n = b / np.sqrt(np.sum(b * b))
            out[i, j] = sum((x - y)**2 for x, y in zip(a_n, b_n))
    return out


def slow_topk(distmat, topk, exclude=None):
    """Sort each row by (distance, index), skipping excluded entries."""
    indices, distances = [], []
    for i, row in enumerate(distmat):
        pairs = sorted((d, j) for j, d in enumerate(row)
                       if exclude is None or not exclude[i, j])
        pairs = pairs[:topk]
        pad = min(topk, len(row)) - len(pairs)
        indices.append([j for _, j in pairs] + [-1] * pad)
        distances.append([d for d, _ in pairs] + [np.inf] * pad)
    return np.array(indices), np.array(distances)


def slow_ap(distmat, q_pids, g_pids, q_camids, g_camids):
    aps = []
    for i in range(len(q_pids)):
        pairs = sorted((d, j) for j, d in enumerate(distmat[i])
                       if not (g_pids[j] == q_pids[i]
                               and g_camids[j] == q_camids[i]))
        hits = [g_pids[j] == q_pids[i] for _, j in pairs]
        ranks = [r + 1 for r, h in enumerate(hits) if h]
        aps.append(
            np.mean([(k + 1) / r
                     for k, r in enumerate(ranks)]) if ranks else np.nan)
    return np.array(aps)


def test_rank_gallery_matches_slow_argsort_with_ties():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((7, 5)).astype(np.float32)
    g = rng.standard_normal((30, 5)).astype(np.float32)
    # Exact ties: gallery rows repeated (and scaled, same direction).
    g[10] = g[3]
    g[20] = 2 * g[3]
    g[25] = g[3]
    # A query equal to a gallery row: distance 0 first.
    q[2] = g[25]
    indices, distances = rank_gallery(q, g, topk=12)
    slow = slow_distance(q, g)
    ref = np.argsort(slow, axis=1, kind='stable')[:, :12]
    assert indices.shape == distances.shape == (7, 12)
    assert indices.dtype == np.int64 and distances.dtype == np.float32
    # The exact compute_distance ties must be ordered by index: rank_gallery
    # ranks the same compute_distance call on the same inputs, so its order
    # is exactly the stable argsort of these distances.
    own = compute_distance(q, g)
    np.testing.assert_array_equal(
        indices,
        np.argsort(own, axis=1, kind='stable')[:, :12])
    # The slow float64 distances pick the same entries up to the order of
    # the planted equal rows, which float32 products need not keep bitwise
    # equal (every other gap among the 13 nearest exceeds 3e-3).
    np.testing.assert_allclose(
        np.take_along_axis(slow, indices, axis=1),
        np.take_along_axis(slow, ref, axis=1), atol=1e-5)
    np.testing.assert_allclose(distances, np.sort(slow, 1)[:, :12],
                               atol=1e-5)
    # Query 2 sees the tied rows 3, 10, 20, 25 first (in index order where
    # their float32 distances tie, as checked above).
    assert sorted(indices[2, :4]) == [3, 10, 20, 25]


def test_rank_distances_hand_case_and_topk_beyond_gallery():
    distmat = np.array([[0.5, 0.1, 0.5, 0.0, 0.5],
                        [1.0, 1.0, 1.0, 1.0, 1.0]], dtype=np.float32)
    indices, distances = rank_distances(distmat, topk=3)
    np.testing.assert_array_equal(indices, [[3, 1, 0], [0, 1, 2]])
    np.testing.assert_allclose(distances, [[0.0, 0.1, 0.5], [1, 1, 1]])
    indices, _ = rank_distances(distmat, topk=50)
    assert indices.shape == (2, 5)
    np.testing.assert_array_equal(indices, [[3, 1, 0, 2, 4],
                                            [0, 1, 2, 3, 4]])


def test_protocol_exclusion_and_padding():
    rng = np.random.default_rng(1)
    num_q, num_g = 9, 25
    q_pids = rng.integers(0, 4, num_q)
    g_pids = rng.integers(0, 4, num_g)
    q_cams = rng.integers(0, 2, num_q)
    g_cams = rng.integers(0, 2, num_g)
    distmat = np.round(rng.random((num_q, num_g)), 1)  # many ties
    exclude = protocol_exclusion(q_pids, g_pids, q_cams, g_cams)
    for i in range(num_q):
        for j in range(num_g):
            assert exclude[i, j] == (q_pids[i] == g_pids[j]
                                     and q_cams[i] == g_cams[j])
    for topk in (1, 5, num_g):
        indices, distances = rank_distances(distmat, topk, exclude)
        ref_idx, ref_dist = slow_topk(distmat, topk, exclude)
        np.testing.assert_array_equal(indices, ref_idx)
        np.testing.assert_allclose(distances, ref_dist)
    # With topk = G the excluded entries leave -1 / inf at the end.
    assert (indices == -1).sum() == exclude.sum()
    # rank_gallery applies the same rule from features.
    q = rng.standard_normal((num_q, 4))
    g = rng.standard_normal((num_g, 4))
    idx, _ = rank_gallery(q, g, 6, q_pids=q_pids, g_pids=g_pids,
                          q_camids=q_cams, g_camids=g_cams)
    ref_idx, _ = slow_topk(compute_distance(q, g), 6, exclude)
    np.testing.assert_array_equal(idx, ref_idx)
    with pytest.raises(ValueError, match='all together'):
        rank_gallery(q, g, 6, q_pids=q_pids)


def test_rank_distances_rejects_bad_input():
    with pytest.raises(ValueError, match='topk'):
        rank_distances(np.zeros((2, 3)), 0)
    with pytest.raises(ValueError, match='NaN'):
        rank_distances(np.array([[np.nan, 1.0]]), 1)
    with pytest.raises(ValueError, match='exclude'):
        rank_distances(np.zeros((2, 3)), 1, np.zeros((3, 2), bool))


def test_average_precision_per_query_matches_slow_reference():
    rng = np.random.default_rng(2)
    num_q, num_g = 30, 120
    q_pids = rng.integers(0, 12, num_q)
    g_pids = rng.integers(0, 10, num_g)  # ids 10, 11: no match
    q_cams = rng.integers(0, 3, num_q)
    g_cams = rng.integers(0, 3, num_g)
    distmat = np.round(rng.random((num_q, num_g)), 2)
    ap = average_precision_per_query(distmat, q_pids, g_pids, q_cams,
                                     g_cams)
    ref = slow_ap(distmat, q_pids, g_pids, q_cams, g_cams)
    np.testing.assert_array_equal(np.isnan(ap), np.isnan(ref))
    assert np.isnan(ap).any()
    np.testing.assert_allclose(ap[~np.isnan(ap)], ref[~np.isnan(ref)],
                               atol=1e-12)
    # Their mean is the mAP of evaluate_rank.
    result = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams)
    assert np.nanmean(ap) == pytest.approx(result['mAP'], abs=1e-12)


def test_average_precision_hand_case():
    # Gallery: match (other camera) at rank 2 and 4; index 0 is junk
    # (same id and camera) and must not count.
    distmat = np.array([[0.0, 0.2, 0.1, 0.4, 0.3]])
    g_pids = np.array([5, 5, 1, 5, 2])
    g_cams = np.array([0, 1, 1, 1, 0])
    ap = average_precision_per_query(distmat, np.array([5]), g_pids,
                                     np.array([0]), g_cams)
    # Ranking without junk: 2 (0.1), 1 (0.2, hit), 4 (0.3), 3 (0.4, hit).
    assert ap[0] == pytest.approx((1 / 2 + 2 / 4) / 2)
