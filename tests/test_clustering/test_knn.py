import tracemalloc

import faiss
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_info

from mmreid_rcl.clustering import (DBSCANLabelGenerator, jaccard_distance,
                                   knn_search)
from mmreid_rcl.clustering.knn import (DEFAULT_KNN, AutoKnn, PCAKnn, build_knn,
                                       pair_inner_products)
from mmreid_rcl.clustering.pca import (principal_axes, reduce_with_residual,
                                       rough_principal_axes)


def low_rank_features(n=2000, dim=256, rank=24, num_ids=100, noise=0.2,
                      seed=0):
    """Unit features around ``num_ids`` centres in a ``rank``-dimensional
    subspace of ``dim`` dimensions, plus isotropic noise (a share ``noise``
    of the norm) that a projection on ``rank`` axes cannot see."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_ids, rank))
    ids = rng.integers(num_ids, size=n)
    z = centres[ids] + 0.6 * rng.standard_normal((n, rank))
    embed = np.linalg.qr(rng.standard_normal((dim, rank)))[0].T
    x = z @ embed
    x += noise * np.linalg.norm(z, axis=1, keepdims=True) * \
        rng.standard_normal((n, dim)) / np.sqrt(dim)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), ids


def brute_force_reference(x, k):
    """The k most similar rows of every row: all inner products in
    float64, each row fully sorted."""
    x = x.astype(np.float64)
    sims = x @ x.T
    idx = np.argsort(-sims, axis=1, kind='stable')[:, :k]
    return np.take_along_axis(sims, idx, axis=1), idx


def same_sets(a, b):
    return (np.sort(a, axis=1) == np.sort(b, axis=1)).all(axis=1)


@pytest.fixture(scope='module')
def features():
    return low_rank_features()


@pytest.fixture(scope='module')
def reference(features):
    return brute_force_reference(features[0], 20)


def test_default_search_is_exact():
    # Brute force or the verified projection, whichever pays
    # (tests/test_clustering/test_knn_auto.py).
    assert DEFAULT_KNN == 'auto'
    searcher = build_knn(DEFAULT_KNN)
    assert isinstance(searcher, AutoKnn)
    assert isinstance(searcher.pca, PCAKnn) and searcher.pca.verify is True


def test_pca_search_equals_brute_force(features, reference):
    x, _ = features
    ref_sims, ref_idx = reference
    # 24 axes miss the isotropic part: the bound proves most rows, and the
    # few it cannot are searched by brute force.
    info = {}
    sims, idx = knn_search(x, 20, dict(type='pca', dim=24, refine=2),
                           info=info)
    assert info['knn_path'] == 'pca verified'
    assert 0 < info['knn_unproven_rows'] < len(x) // 10
    assert same_sets(idx, ref_idx).all()
    np.testing.assert_allclose(sims, ref_sims, atol=1e-5)
    assert (idx[:, 0] == np.arange(len(x))).all()
    assert (np.diff(sims, axis=1) <= 0).all()
    assert idx.dtype == np.int64 and sims.dtype == np.float32


def test_unproven_rows_would_be_wrong_without_verification(
        features, reference):
    x, _ = features
    _, ref_idx = reference
    # With refine=1 no row can be proven by the first pass (the candidates
    # are exactly k): the wider second pass and brute force take them all.
    info = {}
    _, idx = knn_search(x, 20, dict(type='pca', dim=24, refine=1),
                        info=info)
    assert info['knn_unproven_rows'] == len(x)
    assert same_sets(idx, ref_idx).all()
    # With 8 axes many rows are not proven even with 4 w candidates: they
    # are searched by brute force, and the result is still exact.
    info = {}
    _, idx = knn_search(x, 20, dict(type='pca', dim=8, refine=1),
                        info=info)
    assert info['knn_brute_force_rows'] > 0
    assert same_sets(idx, ref_idx).all()
    # The same search unverified misses neighbours: the check matters.
    _, approx = knn_search(
        x, 20, dict(type='pca', dim=24, refine=1, verify=False))
    assert not same_sets(approx, ref_idx).all()


def test_small_problems_fall_back_to_brute_force(features, reference):
    x, _ = features
    info = {}
    # 256 axes of 256-d features save nothing.
    _, idx = knn_search(x, 20, 'pca', info=info)
    assert info['knn_path'].startswith('brute force')
    assert same_sets(idx, reference[1]).all()


def test_bound_vectors_never_exceed_the_true_distance():
    x, _ = low_rank_features(n=600, dim=64, rank=8, noise=0.5, seed=3)
    x[:5] *= 1.5  # the bound holds for any norms
    axes, mean = principal_axes(x, 8, train_size=300, seed=1)
    np.testing.assert_allclose(axes.T @ axes, np.eye(8), atol=1e-5)
    z = reduce_with_residual(x, axes, mean).astype(np.float64)
    xd = x.astype(np.float64)
    rng = np.random.default_rng(0)
    i, j = rng.integers(600, size=(2, 5000))
    true = ((xd[i] - xd[j])**2).sum(axis=1)
    bound = ((z[i] - z[j])**2).sum(axis=1)
    assert (bound <= true + 1e-5).all()
    assert np.median(bound / np.maximum(true, 1e-12)) > 0.3  # not trivial
    # With every axis, the projection keeps the distances.
    axes, mean = principal_axes(x, 64, train_size=600)
    z = reduce_with_residual(x, axes, mean).astype(np.float64)
    np.testing.assert_allclose(z[:, -1], 0, atol=1e-3)
    np.testing.assert_allclose(((z[i] - z[j])**2).sum(axis=1), true,
                               atol=1e-4)


def test_principal_axes_find_the_planted_subspace():
    rng = np.random.default_rng(0)
    # Rank 5 in 40 dimensions: the axes span exactly those 5 directions,
    # and stay orthonormal when asked for more axes than the data have.
    basis = np.linalg.qr(rng.standard_normal((40, 5)))[0]
    x = (rng.standard_normal((500, 5)) * [5, 4, 3, 2, 1]) @ basis.T
    x = x.astype(np.float32)
    axes, mean = principal_axes(x, 5, train_size=500)
    np.testing.assert_allclose(mean, x.mean(axis=0), atol=1e-5)
    projector = axes @ axes.T
    np.testing.assert_allclose(projector, basis @ basis.T, atol=1e-4)
    axes, _ = principal_axes(x, 12, train_size=500)
    assert axes.shape[0] == 40 and 5 <= axes.shape[1] <= 12
    np.testing.assert_allclose(axes.T @ axes, np.eye(axes.shape[1]),
                               atol=1e-5)
    # From a start block one round is enough: the planted directions, a
    # little off, give them back exactly.
    near = (basis + 0.05 * rng.standard_normal((40, 5))).astype(np.float32)
    axes, _ = principal_axes(x, 5, train_size=500, num_iters=1, start=near)
    np.testing.assert_allclose(axes @ axes.T, basis @ basis.T, atol=1e-4)
    with pytest.raises(ValueError, match='start must be a 40 x w block'):
        principal_axes(x, 5, start=np.zeros((40, 22), np.float32))


def test_rough_principal_axes_find_the_leading_subspace():
    """The cheap axes of the screen: orthonormal to float32 rounding of a
    Cholesky factor, spanning nearly what exact axes of the sample span."""
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.standard_normal((300, 6)))[0]
    # 6 strong directions over isotropic noise, 200 samples in 300-d.
    x = (rng.standard_normal((200, 6)) * [9, 8, 7, 6, 5, 4]) @ basis.T
    x = (x + 0.3 * rng.standard_normal((200, 300)) + 2.0).astype(np.float32)
    axes, mean = rough_principal_axes(x, 6, seed=3)
    np.testing.assert_allclose(mean, x.mean(axis=0), atol=1e-5)
    assert axes.shape == (300, 6) and axes.dtype == np.float32
    np.testing.assert_allclose(axes.T @ axes, np.eye(6), atol=1e-4)
    # The slow reference: the top 6 right singular vectors of the centred
    # sample, in float64.
    centred = x.astype(np.float64) - x.mean(axis=0, dtype=np.float64)
    exact = np.linalg.svd(centred, full_matrices=False)[2][:6].T
    assert np.abs(axes @ axes.T - exact @ exact.T).max() < 0.02
    captured = np.linalg.norm(centred @ axes)**2
    assert captured >= 0.999 * np.linalg.norm(centred @ exact)**2
    # Wider requests are cut to the sample's rank, 2048-d features of a
    # 512-row sample keep their 256 axes orthonormal.
    axes, _ = rough_principal_axes(x[:20], 64)
    assert axes.shape == (300, 19)
    wide = rng.standard_normal((512, 2048)).astype(np.float32)
    axes, _ = rough_principal_axes(wide * np.linspace(3, 1, 2048), 256)
    np.testing.assert_allclose(axes.T @ axes, np.eye(256), atol=1e-3)


def test_a_fit_from_rough_axes_catches_the_variance_of_three_rounds():
    """principal_axes started from rough_principal_axes of a smaller
    sample: one round catches as much of held-out rows' variance as three
    rounds from a random block (what AutoKnn's probe relies on)."""
    from mmreid_rcl.apis.feature_families import make_features

    # The probe's sizes: 256 axes of 2048-d features, a 512-row start.
    x, _ = make_features(4000, dim=2048, seed=2)
    held = x[3000:] - x[3000:].mean(axis=0)

    def caught(axes):
        return np.linalg.norm(held @ axes)**2 / np.linalg.norm(held)**2

    start, _ = rough_principal_axes(x[2000:2512], 256, seed=1)
    warm, _ = principal_axes(x[:3000], 256, num_iters=1, start=start)
    cold, _ = principal_axes(x[:3000], 256, num_iters=3)
    once, _ = principal_axes(x[:3000], 256, num_iters=1)
    assert caught(warm) >= caught(cold) - 1e-3
    # The start is what helps: one round from a random block catches less.
    assert caught(once) < caught(warm)


def test_pair_inner_products():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 33)).astype(np.float32)
    rows, cols = rng.integers(50, size=(2, 400))
    np.testing.assert_allclose(
        pair_inner_products(x, rows, cols),
        np.einsum('ij,ij->i', x[rows].astype(np.float64), x[cols]),
        rtol=1e-5, atol=1e-5)
    assert pair_inner_products(x, rows[:0], cols[:0]).shape == (0, )


@pytest.mark.parametrize('knn', [
    dict(type='ivf', dim=24, nlist=16, nprobe=16),
    dict(type='hnsw', dim=24, refine=3),
    dict(type='ivf', nlist=16, nprobe=16),
    dict(type='nndescent', dim=24, min_rows=101),
    dict(type='nndescent', dim=None, degree=16, pool=32, min_rows=101),
])
def test_approximate_searches_on_easy_data(features, reference, knn):
    x, _ = features
    sims, idx = knn_search(x[:800], 10, knn, num_threads=1)
    _, ref_idx = brute_force_reference(x[:800], 10)
    hits = np.mean([len(np.intersect1d(a, b)) for a, b in zip(idx, ref_idx)])
    assert hits / 10 > 0.97
    assert (np.diff(sims, axis=1) <= 1e-6).all()
    # The similarities returned are the exact ones of the indices.
    np.testing.assert_allclose(
        sims, np.einsum('nd,nkd->nk', x[:800], x[:800][idx]), atol=1e-5)


def test_threads_are_restored(features):
    x, _ = features

    def blas_threads():
        return [d['num_threads'] for d in threadpool_info()
                if d['user_api'] == 'blas']

    before, blas_before = faiss.omp_get_max_threads(), blas_threads()
    knn_search(x[:500], 10, dict(type='pca', dim=24), num_threads=1)
    assert faiss.omp_get_max_threads() == before
    assert blas_threads() == blas_before


def test_bad_configs():
    for knn, match in ((dict(type='pca', dim=0), 'dim must be'),
                       (dict(type='pca', dim=None), 'dim must be'),
                       (dict(type='ivf', nprobe=0), 'nprobe must be'),
                       (dict(type='hnsw', m=2.5), 'm must be'),
                       (dict(dim=8), 'needs a `type`'),
                       ('annoy', 'unknown knn method')):
        with pytest.raises(ValueError, match=match):
            build_knn(knn)
    with pytest.raises(TypeError, match='method name or a config dict'):
        build_knn(3)
    # None switches the projection of ivf and hnsw off.
    assert build_knn(dict(type='ivf', dim=None)).dim is None


def test_default_clustering_matches_brute_force(features):
    # The label generator's default search gives the labels of brute
    # force, on a case where the projected path is taken.
    x, ids = features
    knn = dict(type='pca', dim=24, refine=2)
    gen = DBSCANLabelGenerator(k1=20, knn=knn)
    labels, info = gen(x, return_info=True)
    assert info['knn_unproven_rows'] > 0
    exact = DBSCANLabelGenerator(k1=20, knn='exact')(x)
    # The two searches round the similarities differently (float32 products
    # of 256 terms: ~2e-7 apart, 7e-7 at most); on these features the
    # neighbours next to a cut (k2, k1 / 2 + 1, k1) are >= 1.4e-6 apart
    # and no distance is within 1e-4 of eps, so the labels agree exactly.
    np.testing.assert_array_equal(labels, exact)
    assert labels.max() > 10 and adjusted_rand_score(ids, labels) > 0.5
    dist = jaccard_distance(x, k1=20, knn=knn, max_distance=0.6)
    ref = jaccard_distance(x, k1=20, knn='exact', max_distance=0.6)
    # Similarities ~1e-6 apart move the softmax weights, hence the
    # distances, by a few 1e-6 at most.
    assert abs(dist - ref).max() < 1e-5 and dist.nnz == ref.nnz


def test_pca_search_memory_is_linear_in_n():
    # Numpy's traced peak at N and 4 N grows about 4 times, far below one
    # N x N float32 matrix (256 MB at 8000); faiss' own buffers are
    # blocked.
    peaks = []
    for n in (2000, 8000):
        x, _ = low_rank_features(n=n, dim=128, rank=12, num_ids=n // 20,
                                 seed=n)
        tracemalloc.start()
        info = {}
        knn_search(x, 20, dict(type='pca', dim=12), info=info)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert info['knn_path'] == 'pca verified'
    assert peaks[1] < 6 * peaks[0]
    assert peaks[1] < 8000 * 8000 * 4 / 10


@pytest.mark.parametrize('knn', [
    dict(type='pca', dim=24, refine=2),
    dict(type='pca', dim=8, refine=1),  # many rows by brute force
    dict(type='hnsw', dim=24, refine=3),
    dict(type='hnsw'),
    dict(type='ivf', dim=24, nlist=16, nprobe=4),
    dict(type='ivf', nlist=16, nprobe=4),
    dict(type='nndescent', dim=24, min_rows=101),
])
def test_blocks_do_not_change_the_search(features, knn):
    # Every row is searched (and re-ranked) on its own: blocks of a few
    # rows give the neighbours of one block (up to the rounding of the
    # products, which BLAS may block differently).
    x, _ = features
    x = x[:900]
    info = {}
    sims, idx = knn_search(x, 15, knn, num_threads=1, info=info)
    for block_size in (15 * 7, 1000):
        info_blocked = {}
        blocked = knn_search(x, 15, dict(knn, block_size=block_size),
                             num_threads=1, info=info_blocked)
        assert same_sets(blocked[1], idx).mean() > 0.99
        np.testing.assert_allclose(blocked[0], sims, atol=1e-5)
        assert info_blocked == info
    if knn['type'] == 'pca':
        assert info['knn_path'] == 'pca verified'
    with pytest.raises(ValueError, match='block_size must be'):
        knn_search(x, 15, dict(knn, block_size=0))
