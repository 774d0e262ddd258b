import importlib

import numpy as np
import pytest
import torch

from mmreid_rcl.evaluation.functional import compute_distance, re_ranking


def literal_re_ranking(q_g_dist, q_q_dist, g_g_dist, k1, k2, lambda_value):
    """The k-reciprocal re-ranking loop by loop, as the paper spells it.

    The conventions of ``re_ranking`` are followed: distances are used as
    given (not squared), each joint row is divided by its maximum for the
    weights, the final mixture uses ``q_g_dist`` itself and neighbours are
    ranked by a stable sort.
    """
    num_q = q_g_dist.shape[0]
    joint = np.block([[q_q_dist, q_g_dist], [q_g_dist.T, g_g_dist]])
    joint = joint.astype(np.float32)
    num_all = joint.shape[0]
    normed = joint / joint.max(axis=1, keepdims=True)
    initial_rank = np.argsort(normed, axis=1, kind='stable')

    def k_reciprocal(i, k):
        forward = initial_rank[i, :k + 1]
        return np.array([
            j for j in forward if i in initial_rank[j, :k + 1]
        ], dtype=np.int64)

    V = np.zeros((num_all, num_all), dtype=np.float32)
    for i in range(num_all):
        recip = k_reciprocal(i, k1)
        expansion = list(recip)
        for candidate in recip:
            cand_recip = k_reciprocal(candidate, int(np.around(k1 / 2.)))
            if len(np.intersect1d(cand_recip, recip)) > \
                    2. / 3 * len(cand_recip):
                expansion.extend(cand_recip)
        expansion = np.unique(expansion)
        weight = np.exp(-normed[i, expansion])
        V[i, expansion] = weight / weight.sum()
    if k2 != 1:
        V = np.stack(
            [V[initial_rank[i, :k2]].mean(axis=0) for i in range(num_all)])
    jaccard = np.zeros_like(q_g_dist, dtype=np.float64)
    for i in range(num_q):
        for j in range(q_g_dist.shape[1]):
            mins = np.minimum(V[i], V[num_q + j]).sum()
            maxs = np.maximum(V[i], V[num_q + j]).sum()
            jaccard[i, j] = 1 - mins / maxs
    return (1 - lambda_value) * jaccard + lambda_value * q_g_dist


def clustered_features(num, num_ids, dim, rng):
    centres = rng.standard_normal((num_ids, dim))
    ids = rng.integers(0, num_ids, num)
    return centres[ids] + 0.7 * rng.standard_normal((num, dim))


def distances(seed, num_q=12, num_g=40, ties=False):
    rng = np.random.default_rng(seed)
    feats = clustered_features(num_q + num_g, 6, 16, rng)
    if ties:
        # Duplicated images and coarse distances give many exact ties.
        feats[[3, 20, 31]] = feats[[7, 25, 30]]
    query, gallery = feats[:num_q], feats[num_q:]
    q_g = compute_distance(query, gallery)
    q_q = compute_distance(query, query)
    g_g = compute_distance(gallery, gallery)
    # Matrix products need not be bitwise symmetric; the reference reads
    # rows and columns alike, so make them equal.
    q_q, g_g = (q_q + q_q.T) / 2, (g_g + g_g.T) / 2
    if ties:
        q_g, q_q, g_g = (np.round(d, 1) for d in (q_g, q_q, g_g))
    return q_g, q_q, g_g


@pytest.mark.parametrize('seed,k1,k2,lambda_value,ties', [
    (0, 20, 6, 0.3, False),
    (1, 6, 3, 0.3, False),
    (2, 5, 1, 0.5, False),
    (3, 3, 2, 0.0, False),
    (4, 60, 6, 0.3, False),  # k1 larger than the number of samples
    (5, 20, 6, 0.3, True),
    (6, 6, 3, 0.3, True),
])
def test_re_ranking_matches_literal_reference(seed, k1, k2, lambda_value,
                                              ties):
    q_g, q_q, g_g = distances(seed, ties=ties)
    expected = literal_re_ranking(q_g, q_q, g_g, k1, k2, lambda_value)
    result = re_ranking(q_g, q_q, g_g, k1=k1, k2=k2,
                        lambda_value=lambda_value)
    assert result.shape == (12, 40)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, expected, atol=1e-5, rtol=0)


def test_re_ranking_in_blocks_and_from_tensors(monkeypatch):
    q_g, q_q, g_g = distances(5, num_q=20, num_g=50)
    expected = re_ranking(q_g, q_q, g_g, k1=8, k2=3)
    # Force several row blocks in every pass.
    module = importlib.import_module(
        'mmreid_rcl.evaluation.functional.re_ranking')
    monkeypatch.setattr(module, '_BLOCK_ENTRIES', 200)
    result = re_ranking(
        torch.from_numpy(q_g), torch.from_numpy(q_q), torch.from_numpy(g_g),
        k1=8, k2=3)
    np.testing.assert_allclose(result, expected, atol=1e-6, rtol=0)


def test_re_ranking_lambda_one_keeps_original_distance():
    q_g, q_q, g_g = distances(6)
    result = re_ranking(q_g, q_q, g_g, lambda_value=1.0)
    # Exact: 0 * jaccard + 1 * q_g is element-wise and correctly rounded.
    np.testing.assert_array_equal(result, q_g)


def test_re_ranking_improves_ranking_of_clustered_data():
    # Jaccard distances alone must still put same-cluster samples first.
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((5, 16))
    ids = np.repeat(np.arange(5), 8)
    feats = centres[ids] + 0.3 * rng.standard_normal((40, 16))
    query, gallery = feats[::4], np.delete(feats, np.s_[::4], axis=0)
    q_ids, g_ids = ids[::4], np.delete(ids, np.s_[::4])
    result = re_ranking(
        compute_distance(query, gallery), compute_distance(query, query),
        compute_distance(gallery, gallery), k1=5, k2=3, lambda_value=0.)
    nearest = g_ids[result.argmin(axis=1)]
    np.testing.assert_array_equal(nearest, q_ids)
    assert ((result >= 0) & (result <= 1)).all()


@pytest.mark.parametrize('shapes,message', [
    (((3, 4), (3, 3), (5, 5)), 'g_g_dist must have shape'),
    (((3, 4), (4, 4), (4, 4)), 'q_q_dist must have shape'),
    (((0, 4), (0, 0), (4, 4)), 'non-empty'),
])
def test_re_ranking_rejects_bad_shapes(shapes, message):
    q_g, q_q, g_g = (np.ones(s, dtype=np.float32) for s in shapes)
    with pytest.raises(ValueError, match=message):
        re_ranking(q_g, q_q, g_g)


def test_re_ranking_rejects_bad_parameters():
    q_g, q_q, g_g = distances(8)
    with pytest.raises(ValueError, match='k1 must be a positive int'):
        re_ranking(q_g, q_q, g_g, k1=0)
    with pytest.raises(ValueError, match='lambda_value'):
        re_ranking(q_g, q_q, g_g, lambda_value=1.5)
    q_g[0, 0] = np.nan
    with pytest.raises(ValueError, match='NaN'):
        re_ranking(q_g, q_q, g_g)
