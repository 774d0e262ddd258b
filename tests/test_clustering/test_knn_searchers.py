"""The kNN searchers as registered components: names, dicts, class names,
instances, defaults and the errors of bad configs."""
import numpy as np
import pytest

from mmreid_rcl.clustering import DBSCANLabelGenerator, knn_search
from mmreid_rcl.clustering.knn import (BaseKnn, ExactKnn, HNSWKnn, IVFKnn,
                                       NNDescentKnn, PCAKnn, build_knn)
from mmreid_rcl.registry import KNN_SEARCHERS, LABEL_GENERATORS

SEARCHERS = [('exact', ExactKnn), ('pca', PCAKnn), ('hnsw', HNSWKnn),
             ('ivf', IVFKnn), ('nndescent', NNDescentKnn)]


def unit_features(n=400, dim=32, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


@pytest.mark.parametrize('name,cls', SEARCHERS)
def test_names_dicts_and_class_names_build_the_same_searcher(name, cls):
    for knn in (name, dict(type=name), cls.__name__,
                dict(type=cls.__name__), dict(type=cls)):
        searcher = build_knn(knn)
        assert type(searcher) is cls and searcher.name == name
    assert type(KNN_SEARCHERS.build(dict(type=name))) is cls
    assert type(KNN_SEARCHERS.build(dict(type=cls.__name__))) is cls
    # A searcher is used as it is.
    searcher = cls()
    assert build_knn(searcher) is searcher


def test_defaults_and_settings():
    pca = build_knn('pca')
    assert (pca.dim, pca.refine, pca.train_size, pca.seed, pca.verify,
            pca.block_size) == (256, 4, 2048, 0, True, 1 << 20)
    hnsw = build_knn('hnsw')
    assert (hnsw.m, hnsw.ef_construction, hnsw.ef_search, hnsw.dim,
            hnsw.refine, hnsw.train_size, hnsw.seed,
            hnsw.block_size) == (32, 80, 128, None, 2, 2048, 0, 1 << 20)
    ivf = build_knn('ivf')
    assert (ivf.nlist, ivf.nprobe, ivf.train_size, ivf.seed, ivf.dim,
            ivf.refine, ivf.block_size) == (None, 16, None, 0, None, 2,
                                            1 << 20)
    ivf = build_knn(dict(type='IVFKnn', nlist=8, nprobe=32, dim=16))
    assert (ivf.nlist, ivf.nprobe, ivf.dim) == (8, 32, 16)
    # 4 sqrt(N) cells, 64 training samples each, at most N of both.
    assert build_knn('ivf').cells(10000) == 400
    assert build_knn('ivf').samples_trained_on(10000) == 10000
    assert ivf.cells(100) == 8 and ivf.samples_trained_on(100) == 100


@pytest.mark.parametrize('forms', [
    ('exact', 'ExactKnn', ExactKnn()),
    (dict(type='pca', dim=8), dict(type='PCAKnn', dim=8), PCAKnn(dim=8)),
    (dict(type='hnsw', dim=8), dict(type='HNSWKnn', dim=8), HNSWKnn(dim=8)),
    (dict(type='ivf', nlist=8), dict(type='IVFKnn', nlist=8),
     IVFKnn(nlist=8)),
    (dict(type='nndescent', min_rows=101),
     dict(type='NNDescentKnn', min_rows=101), NNDescentKnn(min_rows=101)),
])
def test_every_form_gives_the_same_neighbours(forms):
    x = unit_features()
    results = []
    for knn in forms:
        info = {}
        results.append(knn_search(x, 10, knn, num_threads=1, info=info))
        assert info['knn_method'] == build_knn(knn).name
    for sims, idx in results[1:]:
        np.testing.assert_array_equal(idx, results[0][1])
        np.testing.assert_array_equal(sims, results[0][0])
    # The search method of the searcher is what knn_search runs.
    sims, idx = build_knn(forms[0]).search(x, 10, num_threads=1)
    np.testing.assert_array_equal(idx, results[0][1])


def test_unknown_methods_and_bad_settings():
    for knn, match in (
        ('annoy', "unknown knn method 'annoy'"),
        (dict(type='Annoy'), "unknown knn method 'Annoy'"),
        (dict(type=dict), 'unknown knn method'),
        (dict(type=None, dim=8), 'needs a `type`'),
        (dict(type='exact', dim=8),
         r"unknown parameters \['dim'\] for knn method 'exact'; it takes "
         'none'),
        (dict(type='HNSWKnn', nprobe=4),
         r"unknown parameters \['nprobe'\] for knn method 'hnsw'"),
        (dict(type='PCAKnn', refine=0),
         "knn 'pca': refine must be a positive int, got 0"),
        (dict(type='ivf', nlist=0),
         "knn 'ivf': nlist must be a positive int or None, got 0"),
        (dict(type='hnsw', ef_search=True), 'ef_search must be'),
        (dict(type='hnsw', train_size=1.5), 'train_size must be'),
    ):
        with pytest.raises(ValueError, match=match):
            build_knn(knn)
    with pytest.raises(TypeError, match='method name or a config dict'):
        build_knn(['pca'])
    # The label generators refuse them when they are built.
    with pytest.raises(ValueError, match='ef_search must be'):
        DBSCANLabelGenerator(knn=dict(type='hnsw', ef_search=0))
    with pytest.raises(ValueError, match='unknown knn method'):
        LABEL_GENERATORS.build(
            dict(type='DBSCANLabelGenerator', knn='kdtree'))
    with pytest.raises(ValueError, match=r'k must be in \[1, N=400\]'):
        build_knn('exact').search(unit_features(), 401)


def test_label_generator_takes_every_form():
    x = unit_features(n=300, dim=16)
    labels = [
        LABEL_GENERATORS.build(
            dict(type='DBSCANLabelGenerator', k1=10, knn=knn,
                 num_threads=1))(x)
        for knn in ('exact', 'ExactKnn', dict(type='ExactKnn'), ExactKnn())
    ]
    for other in labels[1:]:
        np.testing.assert_array_equal(other, labels[0])


def test_a_registered_searcher_is_found_by_its_name():

    class ReversedIndexKnn(BaseKnn):
        """Exact neighbours, computed on the rows in reverse order."""
        name = 'reversed'

        def _search(self, x, k, info):
            sims, idx = build_knn('exact').search(x[::-1].copy(), k)
            return sims[::-1], (len(x) - 1 - idx)[::-1]

    KNN_SEARCHERS.register_module(module=ReversedIndexKnn)
    try:
        x = unit_features(n=200)
        info = {}
        sims, idx = knn_search(x, 5, dict(type='ReversedIndexKnn'),
                               num_threads=1, info=info)
        ref_sims, ref_idx = knn_search(x, 5, 'exact', num_threads=1)
        assert info['knn_method'] == 'reversed'
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_allclose(sims, ref_sims, atol=1e-6)
    finally:
        KNN_SEARCHERS.module_dict.pop('ReversedIndexKnn')
