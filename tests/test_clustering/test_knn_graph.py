"""The graph searchers: a kNN graph of every sample, by faiss' NN-descent
(``'nndescent'``) or by pynndescent (random projection trees and
NN-descent, ``'pynndescent'``), re-ranked by exact inner products;
approximate, checked against brute force."""
import numba
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from mmreid_rcl.apis.feature_families import make_features
from mmreid_rcl.clustering import DBSCANLabelGenerator, knn_search
from mmreid_rcl.clustering.knn import NNDescentKnn, PyNNDescentKnn, build_knn
from mmreid_rcl.clustering.knn.pynndescent_knn import drop_self
from mmreid_rcl.clustering.memory import NUMBA_JIT_BYTES, knn_memory

GRAPHS = ('nndescent', 'pynndescent')


def brute_force(x, k):
    """Every inner product in float64, each row fully sorted."""
    sims = x.astype(np.float64) @ x.T.astype(np.float64)
    idx = np.argsort(-sims, axis=1, kind='stable')[:, :k]
    return np.take_along_axis(sims, idx, axis=1), idx


def recall(found, exact):
    k = exact.shape[1]
    return np.mean([len(np.intersect1d(a, b)) / k
                    for a, b in zip(found, exact)])


@pytest.fixture(scope='module')
def synthetic():
    # The benchmark's generator at a small size: identities of ~17
    # images, look-alikes, camera shifts, a rank-256 latent space.
    return make_features(3000, dim=384, seed=1)


# Both searchers on 8 tight groups of 40 far apart, and what they report.
SEPARATED = dict(
    nndescent=(dict(type='nndescent', dim=None, degree=24, pool=32,
                    min_rows=101), 'nndescent graph, exact re-rank', None),
    pynndescent=(dict(type='pynndescent', dim=None, degree=24,
                      min_rows=100),
                 'pynndescent graph, exact re-rank, weakest rows by brute '
                 'force, reverse edges', 96))


@pytest.mark.parametrize('graph', GRAPHS)
def test_separated_groups_are_found_exactly(graph):
    # Every sample's 20 nearest are in its own group, which the graph
    # must hold after a few rounds.
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((8, 64)) * 10
    ids = np.repeat(np.arange(8), 40)
    x = centres[ids] + rng.standard_normal((320, 64))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    knn, path, exact_rows = SEPARATED[graph]
    info = {}
    sims, idx = knn_search(x, 20, knn, num_threads=1, info=info)
    assert info['knn_path'] == path
    assert info.get('knn_exact_rows') == exact_rows
    assert info['knn_graph_degree'] == 24
    ref_sims, ref_idx = brute_force(x, 20)
    assert (ids[idx] == ids[:, None]).all()
    assert recall(idx, ref_idx) == 1.0
    np.testing.assert_allclose(sims, ref_sims, atol=1e-5)


@pytest.mark.parametrize('graph', GRAPHS)
def test_clusters_match_exact_knn(synthetic, graph):
    x, _ = synthetic
    gen = DBSCANLabelGenerator(knn=dict(type=graph, min_rows=101),
                               num_threads=1)
    labels = gen(x)
    exact = DBSCANLabelGenerator(knn='exact', num_threads=1)(x)
    assert labels.max() > 50
    assert adjusted_rand_score(exact, labels) > 0.95


@pytest.mark.parametrize('graph', GRAPHS)
def test_small_problems_are_brute_force(graph):
    x = make_features(500, dim=256, seed=2)[0]
    info = {}
    sims, idx = knn_search(x, 10, graph, num_threads=1, info=info)
    assert info['knn_path'].startswith('brute force')
    ref_sims, ref_idx = knn_search(x, 10, 'exact', num_threads=1)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(sims, ref_sims)


# -- faiss' NN-descent -------------------------------------------------------


def test_nndescent_recall_on_synthetic_reid_features(synthetic):
    x, ids = synthetic
    k = 30
    info = {}
    knn = dict(type='nndescent', dim=256, min_rows=101)
    sims, idx = knn_search(x, k, knn, num_threads=1, info=info)
    ref_sims, ref_idx = brute_force(x, k)
    # Measured 0.99+ (0.988 at 100,000 in the benchmark); random
    # neighbours would give 0.01.
    assert recall(idx, ref_idx) > 0.95
    # Each sample is its own first neighbour, the rows are sorted, and the
    # similarities are the exact ones of the pairs returned.
    assert (idx[:, 0] == np.arange(len(x))).all()
    assert (np.diff(sims, axis=1) <= 1e-6).all()
    exact = np.einsum('nd,nkd->nk', x.astype(np.float64),
                      x[idx].astype(np.float64))
    np.testing.assert_allclose(sims, exact, atol=1e-5)
    # One round of a smaller graph with few reverse joins is measurably
    # worse: the rounds and the degree are what find the neighbours.
    _, rough = knn_search(x, k, dict(type='nndescent', dim=256, iterations=1,
                                     degree=32, reverse=4, pool=48,
                                     min_rows=101),
                          num_threads=1)
    assert recall(rough, ref_idx) < recall(idx, ref_idx) - 0.05


def test_nndescent_degree_is_raised_to_k():
    searcher = NNDescentKnn(degree=8, pool=16)
    assert searcher.graph_degree(30) == 29 and searcher.graph_degree(5) == 8
    x = make_features(400, dim=256, seed=3)[0]
    info = {}
    # One round from too few random candidates would leave pools short
    # of the degree (faiss aborts then): the start holds degree + 1.
    _, idx = knn_search(x, 30, dict(type='nndescent', degree=8, pool=16,
                                    iterations=1, reverse=1, dim=None,
                                    min_rows=101),
                        num_threads=1, info=info)
    assert info['knn_graph_degree'] == 29
    # No row is padded: every row holds 30 distinct samples.
    assert all(len(set(row)) == 30 for row in idx)


def test_nndescent_settings_and_errors():
    nnd = build_knn('nndescent')
    assert (nnd.dim, nnd.degree, nnd.pool, nnd.reverse, nnd.iterations,
            nnd.train_size, nnd.seed, nnd.min_rows) == (256, 48, 96, 40, 12,
                                                        2048, 0, 4096)
    assert type(build_knn(dict(type='NNDescentKnn'))) is NNDescentKnn
    for knn, match in ((dict(type='nndescent', pool=48, degree=48),
                        r'pool \(48\) must be above degree \(48\)'),
                       (dict(type='nndescent', min_rows=100),
                        'min_rows must be at least 101'),
                       (dict(type='nndescent', iterations=0),
                        'iterations must be a positive int')):
        with pytest.raises(ValueError, match=match):
            build_knn(knn)


def test_nndescent_memory_estimate_counts_the_graph():
    # Below min_rows: brute force's block; above: the projection, the
    # index's copy of it and the candidate pools, growing with N.
    small = knn_memory(1000, 2048, 30, 'nndescent')
    assert small == knn_memory(1000, 2048, 30, 'exact')
    big = knn_memory(10**6, 2048, 30, 'nndescent')
    bigger = knn_memory(2 * 10**6, 2048, 30, 'nndescent')
    # Projection (257 floats) + pools (96 x 12 bytes) per sample at least.
    assert big > 10**6 * (257 * 4 + 96 * 12)
    # Measured at this size (bench_clustering --num 1000000): 4.16 GB
    # above the features; the estimate covers it, without doubling it.
    assert 4.16 * 2**30 <= big < 10**6 * 5000
    assert 1.9 < bigger / big < 2.1


# -- pynndescent -----------------------------------------------------------


def test_drop_self_by_hand():
    graph = np.array([[0, 5, 7], [4, 1, 2], [3, 1, -1], [6, 8, 3]],
                     dtype=np.int32)
    out = drop_self(graph)
    # Row 0 and 1 lose themselves wherever they stand, row 3 too; row 2
    # does not hold itself and loses its last entry.
    np.testing.assert_array_equal(out, [[5, 7], [4, 2], [3, 1], [6, 8]])
    assert out.dtype == np.int32


def test_pynndescent_recall_on_synthetic_reid_features(synthetic):
    x, ids = synthetic
    k = 30
    info = {}
    threads = numba.get_num_threads()
    sims, idx = knn_search(x, k, dict(type='pynndescent', min_rows=101),
                           num_threads=1, info=info)
    # numba's threads are given back after the search.
    assert numba.get_num_threads() == threads
    ref_sims, ref_idx = brute_force(x, k)
    # Measured 0.99+ (0.988 at 100,000 in the benchmark); random
    # neighbours would give 0.01.
    assert recall(idx, ref_idx) > 0.95
    # Each sample is its own first neighbour, the rows are sorted, hold 30
    # distinct samples, and the similarities are the exact ones of the
    # pairs returned.
    assert (idx[:, 0] == np.arange(len(x))).all()
    assert all(len(set(row)) == k for row in idx)
    assert (np.diff(sims, axis=1) <= 1e-6).all()
    exact = np.einsum('nd,nkd->nk', x.astype(np.float64),
                      x[idx].astype(np.float64))
    np.testing.assert_allclose(sims, exact, atol=1e-5)
    # A small graph from one tree, stopped after one round, is measurably
    # worse: the rounds and the degree are what find the neighbours.
    _, rough = knn_search(x, k, dict(type='pynndescent', degree=29,
                                     trees=1, iterations=1, candidates=4,
                                     min_rows=101, exact_share=0,
                                     reverse_edges=False),
                          num_threads=1)
    assert recall(rough, ref_idx) < recall(idx, ref_idx) - 0.05


def test_weakest_rows_are_searched_again_exactly(synthetic):
    x, _ = synthetic
    k = 30
    ref_sims, ref_idx = brute_force(x, k)
    # A rough graph (one tree, one round, few candidates) on the features
    # themselves, so that the search of step 4 is brute force, exact.
    rough = dict(type='pynndescent', dim=None, degree=29, trees=1,
                 iterations=1, candidates=4, min_rows=101, exact_share=0,
                 reverse_edges=False)
    base_sims, base_idx = knn_search(x, k, rough, num_threads=1)
    info = {}
    sims, idx = knn_search(x, k, dict(rough, exact_share=0.25),
                           num_threads=1, info=info)
    assert info['knn_exact_rows'] == 750
    assert info['knn_path'] == ('pynndescent graph, exact re-rank, '
                                'weakest rows by brute force')
    # The 750 rows whose neighbours were the least similar on average
    # now hold the exact ones; the others are unchanged.
    weakest = np.argsort(base_sims.mean(axis=1), kind='stable')[:750]
    again = np.zeros(len(x), dtype=bool)
    again[weakest] = True
    assert recall(base_idx[again], ref_idx[again]) < 0.97
    assert recall(idx[again], ref_idx[again]) == 1.0
    np.testing.assert_allclose(sims[again], ref_sims[again], atol=1e-5)
    np.testing.assert_array_equal(idx[~again], base_idx[~again])
    # Every row holds k distinct samples, itself first.
    assert all(len(set(row)) == k for row in idx)
    assert (idx[:, 0] == np.arange(len(x))).all()
    # All rows again: brute force's neighbours everywhere.
    _, every = knn_search(x, k, dict(rough, exact_share=1.0),
                          num_threads=1)
    assert recall(every, ref_idx) == 1.0


def test_reverse_edges_by_hand():
    # Unit vectors at 0, 10, 25, 45 and 100 degrees; each row's list as a
    # poor graph left it. Row 0 misses 1, its nearest, but row 1 lists 0.
    angles = np.deg2rad([0, 10, 25, 45, 100])
    x = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
    indices = np.array([[0, 4, 3], [1, 0, 2], [2, 1, 3], [3, 2, 1],
                        [4, 3, 2]])
    sims = np.einsum('nd,nkd->nk', x, x[indices]).astype(np.float32)
    PyNNDescentKnn()._add_reverse(x, sims, indices)
    # Row 0: its own 4 and 3, and 1 proposed by row 1 -> 0, 1, 3. Row 3
    # is proposed 0, 2 and 4, none nearer than its 2 and 1; row 4 is
    # proposed 0 (row 0 lists it), farther than its 3 and 2.
    np.testing.assert_array_equal(
        indices, [[0, 1, 3], [1, 0, 2], [2, 1, 3], [3, 2, 1], [4, 3, 2]])
    np.testing.assert_allclose(
        sims, np.einsum('nd,nkd->nk', x, x[indices]), atol=1e-6)


def test_reverse_edges_spread_the_exact_lists(synthetic):
    x, _ = synthetic
    k = 30
    _, ref_idx = brute_force(x, k)
    # A rough graph whose weakest quarter is searched again exactly.
    rough = dict(type='pynndescent', degree=29, trees=1, iterations=1,
                 candidates=4, min_rows=101, exact_share=0.25,
                 reverse_edges=False)
    base_sims, base_idx = knn_search(x, k, rough, num_threads=1)
    info = {}
    sims, idx = knn_search(x, k, dict(rough, reverse_edges=True),
                           num_threads=1, info=info)
    assert info['knn_path'].endswith(', reverse edges')
    # The best k of a superset of each row's candidates: no similarity
    # drops; the exact lists of the weakest rows reach the samples they
    # hold (measured: recall 0.38 -> 0.48).
    assert (sims >= base_sims - 1e-6).all()
    assert recall(idx, ref_idx) > recall(base_idx, ref_idx) + 0.05
    assert all(len(set(row)) == k for row in idx)
    assert (idx[:, 0] == np.arange(len(x))).all()


def test_pynndescent_settings_and_errors():
    searcher = build_knn('pynndescent')
    assert (searcher.dim, searcher.degree, searcher.candidates,
            searcher.trees, searcher.iterations, searcher.delta,
            searcher.train_size, searcher.seed, searcher.min_rows,
            searcher.exact_share, searcher.refine,
            searcher.reverse_edges) == (256, 64, None, None, None, 0.001,
                                        2048, 0, 4096, 0.3, 2, True)
    assert type(build_knn(dict(type='PyNNDescentKnn'))) is PyNNDescentKnn
    assert PyNNDescentKnn(degree=8).graph_degree(30) == 29
    for knn, match in ((dict(type='pynndescent', delta=1.0),
                        r'delta must be a number in \[0, 1\)'),
                       (dict(type='pynndescent', trees=0),
                        'trees must be a positive int or None'),
                       (dict(type='pynndescent', degree=0),
                        'degree must be a positive int'),
                       (dict(type='pynndescent', exact_share=1.5),
                        r'exact_share must be a number in \[0, 1\]'),
                       (dict(type='nndescent', exact_share=-0.1),
                        r'exact_share must be a number in \[0, 1\]')):
        with pytest.raises(ValueError, match=match):
            build_knn(knn)


def test_pynndescent_memory_estimate_counts_the_graph():
    small = knn_memory(1000, 2048, 30, 'pynndescent')
    assert small == knn_memory(1000, 2048, 30, 'exact')
    big = knn_memory(10**6, 2048, 30, 'pynndescent')
    bigger = knn_memory(2 * 10**6, 2048, 30, 'pynndescent')
    # The projection (257 floats) and the graph (65 x 9 bytes) per sample
    # at least, well below faiss' NN-descent of a larger degree.
    assert big > 10**6 * (257 * 4 + 65 * 9)
    assert big < knn_memory(10**6, 2048, 30,
                            dict(type='nndescent', degree=96, pool=128))
    # Measured at this size (bench_clustering --num 1000000, the
    # defaults): 3.06 GB above the features; the estimate covers it,
    # without doubling it.
    assert 3.06 * 2**30 <= big < 4.5 * 2**30
    # Linear in N, beside what numba's compiler holds.
    jit = NUMBA_JIT_BYTES
    assert 1.9 < (bigger - jit) / (big - jit) < 2.1
