import importlib

import numpy as np
import pytest
import torch

from mmreid_rcl.evaluation.functional import (compute_distance, evaluate_rank,
                                              per_query_metrics,
                                              protocol_exclusion,
                                              rank_distances)

rank_module = importlib.import_module('mmreid_rcl.evaluation.functional.rank')


def reference_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    """The Market-1501 protocol, one query at a time."""
    aps, inps, cmcs = [], [], []
    for i in range(len(q_pids)):
        order = np.argsort(distmat[i], kind='stable')
        same_id = g_pids[order] == q_pids[i]
        keep = ~(same_id & (g_camids[order] == q_camids[i]))
        hits = same_id[keep]
        if not hits.any():
            continue
        ranks = np.flatnonzero(hits) + 1
        aps.append(np.mean(np.arange(1, len(ranks) + 1) / ranks))
        inps.append(len(ranks) / ranks[-1])
        cmc = np.zeros(max_rank)
        cmc[ranks[0] - 1:] = 1
        cmcs.append(cmc)
    return dict(
        mAP=np.mean(aps),
        cmc=np.mean(cmcs, axis=0),
        mINP=np.mean(inps),
        num_valid_queries=len(aps),
        num_invalid_queries=len(q_pids) - len(aps))


def make_problem(seed, kind, num_q=60, num_g=400):
    """Random ids/cameras with several cameras and unmatched queries."""
    rng = np.random.default_rng(seed)
    num_ids, num_cams, dim = 25, 4, 8
    # Ids >= num_ids occur in the query only: those queries are invalid.
    q_pids = rng.integers(0, num_ids + 3, num_q)
    q_camids = rng.integers(0, num_cams, num_q)
    g_pids = rng.integers(0, num_ids, num_g)
    g_camids = rng.integers(0, num_cams, num_g)
    # One id seen in the gallery only by the camera of its only query:
    # only junk is left, so that query is invalid too.
    g_camids[g_pids == 0] = 2
    q_pids[0] = 0
    q_camids[q_pids == 0] = 2

    centres = rng.standard_normal((num_ids + 3, dim))
    q_feats = centres[q_pids] + rng.standard_normal((num_q, dim))
    g_feats = centres[g_pids] + rng.standard_normal((num_g, dim))
    if kind == 'random':  # uninformative: nearly all entries are ranked
        distmat = rng.random((num_q, num_g), dtype=np.float32)
    else:
        distmat = compute_distance(q_feats, g_feats)
    if kind == 'ties':
        distmat = np.round(distmat, 1)
    elif kind == 'negative':  # similarities, including -0.0 and 0.0
        distmat = -np.round(2 - distmat, 1)
        distmat[distmat == 0] = rng.choice([0.0, -0.0], (distmat == 0).sum())
    elif kind == 'float64':
        # Distinct float64 values that round to the same float32 value.
        distmat = np.round(distmat, 2).astype(np.float64)
        distmat += rng.integers(0, 3, distmat.shape) * 1e-12
    elif kind == 'int':
        distmat = rng.integers(0, 6, distmat.shape)
    return distmat, q_pids, g_pids, q_camids, g_camids


def assert_same_result(result, expected):
    assert result['num_valid_queries'] == expected['num_valid_queries']
    assert result['num_invalid_queries'] == expected['num_invalid_queries']
    np.testing.assert_allclose(result['mAP'], expected['mAP'], atol=1e-6)
    np.testing.assert_allclose(result['mINP'], expected['mINP'], atol=1e-6)
    np.testing.assert_allclose(result['cmc'], expected['cmc'], atol=1e-6)


@pytest.mark.parametrize(
    'kind', ['features', 'ties', 'random', 'negative', 'float64', 'int'])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_evaluate_rank_matches_reference(seed, kind):
    problem = make_problem(seed, kind)
    expected = reference_rank(*problem, max_rank=20)
    assert expected['num_invalid_queries'] >= 1
    result = evaluate_rank(*problem, max_rank=20)
    assert_same_result(result, expected)
    assert result['cmc'].shape == (20, )
    assert isinstance(result['mAP'], float)
    assert isinstance(result['mINP'], float)


@pytest.mark.parametrize('kind', ['ties', 'random', 'float64'])
def test_evaluate_rank_in_small_blocks(monkeypatch, kind):
    # Blocks of one to a few rows must give the same result.
    problem = make_problem(3, kind)
    expected = reference_rank(*problem, max_rank=10)
    for entries in (1, 1000, 3001):
        monkeypatch.setattr(rank_module, '_BLOCK_ENTRIES', entries)
        assert_same_result(evaluate_rank(*problem, max_rank=10), expected)


def test_evaluate_rank_hand_computed():
    g_pids = np.array([1, 2, 1, 3, 1])
    g_camids = np.array([0, 0, 1, 1, 2])
    q_pids = np.array([1, 2, 4])
    q_camids = np.array([0, 1, 0])
    distmat = np.array([
        # Gallery 0 is junk (same id and camera); ranked: 1, 2*, 3, 4*
        # (* = match) -> AP = (1/2 + 2/4) / 2, INP = 2/4.
        [0.1, 0.2, 0.3, 0.4, 0.5],
        # Ranked: 3, then the tie 0, 1*, 2 in index order, 4
        # -> AP = 1/3, INP = 1/3.
        [0.3, 0.3, 0.3, 0.1, 0.9],
        # Id 4 is not in the gallery: skipped.
        [0.5, 0.4, 0.3, 0.2, 0.1],
    ], dtype=np.float32)
    result = evaluate_rank(
        distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50)
    assert result['mAP'] == pytest.approx((0.5 + 1 / 3) / 2)
    assert result['mINP'] == pytest.approx((0.5 + 1 / 3) / 2)
    assert result['cmc'].shape == (50, )
    np.testing.assert_allclose(result['cmc'][:4], [0, 0.5, 1, 1])
    assert (result['cmc'][3:] == 1).all()
    assert result['num_valid_queries'] == 2
    assert result['num_invalid_queries'] == 1


def test_evaluate_rank_accepts_tensors():
    problem = make_problem(4, 'ties')
    expected = evaluate_rank(*problem)
    result = evaluate_rank(*(torch.from_numpy(np.asarray(x))
                             for x in problem))
    assert_same_result(result, expected)


def test_evaluate_rank_perfect_and_worst():
    q_pids, g_pids = np.array([0, 1]), np.array([0, 1, 0, 1])
    q_camids, g_camids = np.zeros(2, int), np.ones(4, int)
    same = (q_pids[:, None] == g_pids[None]).astype(np.float32)
    best = evaluate_rank(1 - same, q_pids, g_pids, q_camids, g_camids, 4)
    # Exact: precisions k / k = 1 and CMC values (hit counts) / 2.
    assert best['mAP'] == 1 and best['mINP'] == 1
    np.testing.assert_array_equal(best['cmc'], [1, 1, 1, 1])
    worst = evaluate_rank(same, q_pids, g_pids, q_camids, g_camids, 4)
    assert worst['mAP'] == pytest.approx((1 / 3 + 2 / 4) / 2)
    assert worst['mINP'] == pytest.approx(0.5)
    np.testing.assert_array_equal(worst['cmc'], [0, 0, 1, 1])


@pytest.mark.parametrize('change,error,message', [
    (dict(distmat=np.zeros(4)), ValueError, 'distmat must be 2-D'),
    (dict(distmat=np.zeros((0, 4))), ValueError, 'at least one query'),
    (dict(distmat=np.zeros((2, 0))), ValueError, 'at least one query'),
    (dict(q_pids=np.zeros(3, int)), ValueError,
     r'q_pids must have shape \(2, \) to match the rows'),
    (dict(g_camids=np.zeros(5, int)), ValueError,
     r'g_camids must have shape \(4, \) to match the columns'),
    (dict(g_pids=np.zeros(4)), TypeError, 'g_pids must hold integers'),
    (dict(distmat=np.full((2, 4), np.nan)), ValueError, 'NaN'),
    (dict(max_rank=0), ValueError, 'max_rank must be a positive int'),
    (dict(g_pids=np.full(4, 7)), ValueError, 'no query has a match'),
])
def test_evaluate_rank_rejects_bad_input(change, error, message):
    args = dict(
        distmat=np.zeros((2, 4), dtype=np.float32),
        q_pids=np.array([0, 1]),
        g_pids=np.array([0, 1, 0, 1]),
        q_camids=np.array([0, 0]),
        g_camids=np.array([1, 1, 1, 1]),
        max_rank=5)
    args.update(change)
    with pytest.raises(error, match=message):
        evaluate_rank(**args)


def test_compute_distance_matches_formula():
    rng = np.random.default_rng(0)
    query = rng.standard_normal((7, 16)) * rng.uniform(0.1, 5, (7, 1))
    gallery = rng.standard_normal((11, 16))
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    expected = ((q[:, None] - g[None]) ** 2).sum(-1)

    euclidean = compute_distance(query, gallery)
    assert isinstance(euclidean, np.ndarray)
    assert euclidean.dtype == np.float32 and euclidean.shape == (7, 11)
    np.testing.assert_allclose(euclidean, expected, atol=1e-5)
    cosine = compute_distance(
        torch.from_numpy(query), torch.from_numpy(gallery), metric='cosine')
    np.testing.assert_allclose(cosine, 1 - q @ g.T, atol=1e-5)
    # Chunks of rows change only the BLAS blocking of the products, so the
    # results agree up to float32 rounding of a 16-term dot product
    # (distances are at most 4: a few ulps of 4 are below 1e-6).
    np.testing.assert_allclose(
        compute_distance(query, gallery, chunk_size=3), euclidean,
        rtol=0, atol=2e-6)


def test_compute_distance_identical_features_are_at_zero():
    feats = torch.randn(5, 32, generator=torch.Generator().manual_seed(0))
    dist = compute_distance(feats, 3 * feats)
    assert (dist >= 0).all()
    # The float32 cosine of two normalised copies (a 32-term dot product)
    # is 1 only up to a few ulps, so 2 - 2c is a few 1e-7 from 0 or 2.
    np.testing.assert_allclose(np.diag(dist), 0, atol=1e-5)
    opposite = compute_distance(feats, -feats, metric='cosine')
    np.testing.assert_allclose(np.diag(opposite), 2, atol=1e-5)


@pytest.mark.parametrize('query,gallery,kwargs,message', [
    (np.ones((2, 4)), np.ones((3, 5)), {}, 'same feature dim, got 4 and 5'),
    (np.ones(4), np.ones((3, 4)), {}, r'query_feats must be 2-D'),
    (np.ones((2, 4)), np.ones((0, 4)), {}, 'gallery_feats is empty'),
    (np.ones((2, 4)), np.ones((3, 4)), dict(metric='l1'), "'euclidean' or"),
])
def test_compute_distance_rejects_bad_input(query, gallery, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compute_distance(query, gallery, **kwargs)


def slow_per_query(distmat, q_pids, g_pids, q_camids, g_camids):
    """AP, INP and first-match rank of each query, one query at a time."""
    ap, inp, first = [], [], []
    for i in range(len(q_pids)):
        keep = ~((g_pids == q_pids[i]) & (g_camids == q_camids[i]))
        order = np.argsort(distmat[i][keep], kind='stable')
        hits = (g_pids[keep] == q_pids[i])[order]
        ranks = np.flatnonzero(hits) + 1
        if len(ranks) == 0:
            ap.append(np.nan), inp.append(np.nan), first.append(0)
            continue
        ap.append(np.mean(np.arange(1, len(ranks) + 1) / ranks))
        inp.append(len(ranks) / ranks[-1])
        first.append(ranks[0])
    return np.array(ap), np.array(inp), np.array(first)


@pytest.mark.parametrize('kind', ['features', 'ties', 'negative', 'float64',
                                  'int'])
def test_per_query_metrics_match_slow_reference(kind):
    args = make_problem(3, kind)
    result = per_query_metrics(*args)
    ap, inp, first = slow_per_query(*args)
    np.testing.assert_array_equal(result['first_match_rank'], first)
    np.testing.assert_array_equal(np.isnan(result['AP']), np.isnan(ap))
    assert np.isnan(ap).any()
    # Sums of at most 400 terms in [0, 1] in float64, in another order.
    np.testing.assert_allclose(result['AP'], ap, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result['INP'], inp, rtol=0, atol=1e-12)
    # evaluate_rank averages these very numbers.
    summary = evaluate_rank(*args)
    valid = ~np.isnan(ap)
    assert summary['mAP'] == np.mean(result['AP'][valid])
    assert summary['mINP'] == np.mean(result['INP'][valid])


def test_per_query_metrics_hand_computed():
    # Gallery 0 is junk (same id and camera); ranking without it:
    # 2 (0.1), 1 (0.2, hit), 4 (0.3), 3 (0.4, hit).
    distmat = np.array([[0.0, 0.2, 0.1, 0.4, 0.3],
                        [0.5, 0.5, 0.5, 0.5, 0.5]])
    result = per_query_metrics(distmat, np.array([5, 2]),
                               np.array([5, 5, 1, 5, 2]), np.array([0, 0]),
                               np.array([0, 1, 1, 1, 0]))
    np.testing.assert_allclose(result['AP'], [(1 / 2 + 2 / 4) / 2, np.nan])
    np.testing.assert_allclose(result['INP'], [2 / 4, np.nan])
    assert result['first_match_rank'].tolist() == [2, 0]
    assert result['num_matches'].tolist() == [2, 0]


def slow_top_k(distmat, topk, exclude):
    out = []
    for i, row in enumerate(distmat):
        order = [j for j in np.argsort(row, kind='stable')
                 if not exclude[i, j]]
        out.append((order + [-1] * topk)[:min(topk, distmat.shape[1])])
    return np.array(out)


@pytest.mark.parametrize('kind', ['features', 'ties', 'negative', 'float64',
                                  'int'])
def test_rank_distances_matches_stable_argsort(monkeypatch, kind):
    distmat, q_pids, g_pids, q_camids, g_camids = make_problem(4, kind)
    exclude = protocol_exclusion(q_pids, g_pids, q_camids, g_camids)
    assert exclude.tolist() == ((q_pids[:, None] == g_pids)
                                & (q_camids[:, None] == g_camids)).tolist()
    rank = importlib.import_module('mmreid_rcl.evaluation.functional.rank')
    monkeypatch.setattr(rank, '_BLOCK_ENTRIES', 1000)  # several blocks
    for topk in (1, 7, 400, 500):
        indices, distances = rank_distances(distmat, topk, exclude)
        expected = slow_top_k(distmat, topk, exclude)
        np.testing.assert_array_equal(indices, expected)
        rows = np.arange(len(distmat))[:, None]
        np.testing.assert_array_equal(
            distances,
            np.where(expected >= 0, distmat[rows, expected],
                     np.inf).astype(np.float32))
