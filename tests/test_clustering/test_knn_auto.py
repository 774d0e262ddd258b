"""The 'auto' kNN search: brute force or the verified projection, chosen
by a probe, always with the neighbours of brute force."""
import numpy as np
import pytest

from mmreid_rcl.clustering import DBSCANLabelGenerator, knn_search
from mmreid_rcl.clustering.knn import (DEFAULT_KNN, AutoKnn, PCAKnn, build_knn,
                                       pca_cost_share)
from mmreid_rcl.clustering.knn.auto_knn import (PCA_MARGIN, SCREEN_SLACK,
                                                screen_proven_share)
from mmreid_rcl.clustering.knn.pca_knn import KnownRows
from mmreid_rcl.clustering.memory import knn_memory
from mmreid_rcl.clustering.pca import (reduce_with_residual,
                                       rough_principal_axes)
from mmreid_rcl.registry import KNN_SEARCHERS, LABEL_GENERATORS

N, DIM, K = 3000, 256, 10
# Sizes the tests can afford: probe from 1000 rows, 16 axes, 2 k
# candidates in the first pass.
SMALL = dict(type='auto', min_rows=1000, dim=16, refine=2)
# The same with the screen (it runs from N = 6 x 400 = 2400 rows).
SCREENED = dict(SMALL, screen_rows=400)


def unit(x):
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def isotropic(n=N, dim=DIM, seed=0):
    """Gaussian noise: no direction matters, the bound proves nothing."""
    return unit(np.random.default_rng(seed).standard_normal((n, dim)))


def reid_like(n=N, dim=DIM, num_ids=150, seed=0):
    """Like re-ID features: a large component every image shares, a small
    one per identity and per-image noise of the same size."""
    rng = np.random.default_rng(seed)
    shared = 3 * rng.standard_normal(dim)
    centres = 0.6 * rng.standard_normal((num_ids, dim))
    ids = rng.integers(num_ids, size=n)
    return unit(shared + centres[ids] + 0.6 * rng.standard_normal((n, dim)))


def low_rank(n=N, dim=DIM, rank=8, num_ids=100, noise=0.05, seed=0):
    """Identities in an 8-dimensional subspace plus a little isotropic
    noise: 16 principal axes catch nearly all of it."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((num_ids, rank))[rng.integers(num_ids, size=n)]
    z += 0.5 * rng.standard_normal((n, rank))
    embed = np.linalg.qr(rng.standard_normal((dim, rank)))[0].T
    x = z @ embed + noise * np.linalg.norm(z, axis=1, keepdims=True) * \
        rng.standard_normal((n, dim)) / np.sqrt(dim)
    return unit(x)


FAMILIES = dict(isotropic=isotropic, reid_like=reid_like, low_rank=low_rank)


@pytest.fixture(scope='module', params=sorted(FAMILIES))
def family(request):
    x = FAMILIES[request.param]()
    # One more neighbour tells whether the k-th is tied with the next.
    ref_sims, ref_idx = knn_search(x, K + 1, 'exact', num_threads=1)
    return request.param, x, ref_sims, ref_idx


def assert_brute_force_neighbours(sims, idx, ref_sims, ref_idx):
    """``idx`` equals brute force's indices except where brute force has
    a tie (similarities within float32 rounding), ``sims`` its
    similarities up to float32 rounding."""
    k = idx.shape[1]
    np.testing.assert_allclose(sims, ref_sims[:, :k], atol=1e-5)
    tied = np.zeros(ref_sims.shape, dtype=bool)
    near = np.abs(np.diff(ref_sims, axis=1)) <= 1e-6
    tied[:, 1:] |= near
    tied[:, :-1] |= near
    differs = idx != ref_idx[:, :k]
    assert not (differs & ~tied[:, :k]).any()
    assert differs.any(axis=1).mean() < 0.01


@pytest.mark.parametrize('knn', [SMALL, SCREENED], ids=['probe', 'screen'])
def test_auto_returns_the_neighbours_of_brute_force(family, knn):
    name, x, ref_sims, ref_idx = family
    info = {}
    sims, idx = knn_search(x, K, knn, num_threads=1, info=info)
    assert info['knn_method'] == 'auto'
    assert_brute_force_neighbours(sims, idx, ref_sims, ref_idx)
    assert (idx[:, 0] == np.arange(len(x))).all()
    assert idx.dtype == np.int64 and sims.dtype == np.float32
    if info['knn_choice'].startswith('auto: exact'):
        # Brute force itself: the same arrays bit for bit.
        exact_sims, exact_idx = knn_search(x, K, 'exact', num_threads=1)
        np.testing.assert_array_equal(idx, exact_idx)
        np.testing.assert_array_equal(sims, exact_sims)


def test_auto_picks_brute_force_on_isotropic_features():
    info = {}
    knn_search(isotropic(), K, SMALL, num_threads=1, info=info)
    assert info['knn_choice'].startswith('auto: exact (probe')
    assert 'of 512 sampled rows' in info['knn_choice']
    assert info['knn_probe_proven'] < 0.1
    assert info['knn_path'] == 'brute force'
    assert 'knn_brute_force_rows' not in info


def slow_screen(x, k, dim, widths, rows, seed):
    """screen_proven_share row by row: the same samples and axes, each
    row's k'-th similarity and rank-th bound distance among the other
    sampled rows by sorting."""
    n = len(x)
    picked = np.random.default_rng(seed).choice(n, rows + rows // 2,
                                                replace=False)
    axes, mean = rough_principal_axes(x[np.sort(picked[rows:])], dim, seed)
    sample = x[np.sort(picked[:rows])].astype(np.float64)
    z = reduce_with_residual(x[np.sort(picked[:rows])], axes,
                             mean).astype(np.float64)
    max_sq = (sample**2).sum(axis=1).max()
    kept = max(1, int(k * (rows - 1) / (n - 1)))
    shares = []
    for width in widths:
        rank = min(rows - 1,
                   max(kept + 1, int(np.ceil(width * (rows - 1) / (n - 1)))))
        proven = 0
        for i in range(rows):
            others = np.arange(rows) != i
            kth = np.sort(sample[others] @ sample[i])[::-1][kept - 1]
            dist = np.sort(((z[others] - z[i])**2).sum(axis=1))[rank - 1]
            bound = (sample[i] @ sample[i] + max_sq - dist) / 2
            proven += bound + 1e-4 < kth
        shares.append(proven / rows)
    return shares


def test_the_screen_against_a_slow_reference():
    for x, low in ((low_rank(), True), (isotropic(), False)):
        shares, axes = screen_proven_share(x, K, 16, (20, 80), 300,
                                           seed=2)
        assert axes.shape == (x.shape[1], 16)
        # float32 products against float64 ones: a row whose margin is
        # within rounding may differ.
        np.testing.assert_allclose(
            shares, slow_screen(x, K, 16, (20, 80), 300, 2), atol=2 / 300)
        if low:
            # The screen leans toward proving: the probe's proven share
            # (about 1 here) is not above its estimate by much.
            assert shares[1] > 0.9 and shares[0] <= shares[1]
        else:
            assert max(shares) < 0.05


def test_the_screen_size():
    """Rows enough for the k-th neighbour among N to map to at least the
    first among them, from 6 to about 2 k times screen_rows."""
    knn = AutoKnn()
    assert knn.screen_size(6143, 30) is None
    assert knn.screen_size(6144, 30) == 1024
    assert knn.screen_size(30691, 30) == 1024
    assert knn.screen_size(32621, 30) == 1089
    assert knn.screen_size(61411, 30) == 2048
    assert knn.screen_size(61412, 30) is None
    for n, k in ((6144, 30), (32621, 30), (61411, 30), (20000, 10)):
        rows = knn.screen_size(n, k)
        assert rows is None or k * (rows - 1) >= n - 1
    assert AutoKnn(screen_rows=0).screen_size(20000, 30) is None


def test_the_screen_rules_out_the_projection_on_isotropic_features(
        monkeypatch):
    """Where the projection proves nothing, the screen chooses brute
    force without projecting the N rows; where it pays, the probe runs as
    without the screen."""
    projections = []

    def searcher():
        knn = build_knn(SCREENED)
        project = knn.pca.project
        monkeypatch.setattr(knn.pca, 'project',
                            lambda *a: projections.append(a) or project(*a))
        return knn

    info = {}
    searcher().search(isotropic(), K, 1, info)
    assert info['knn_choice'] == ('auto: exact (screen: about 0% of 400 '
                                  'sampled rows provable, PCA pays above '
                                  '100%)')
    assert info['knn_screen_proven'] == 0.0
    assert 'knn_probe_proven' not in info and not projections
    info = {}
    x = low_rank()
    searcher().search(x, K, 1, info)
    assert info['knn_screen_proven'] + SCREEN_SLACK > 0.9
    assert info['knn_choice'].startswith('auto: pca (probe proved ')
    # The probe's fit started from the screen's rough axes.
    (_, start), = projections
    assert start.shape == (x.shape[1], 16)
    # Too few rows for the screen (N < 6 screen_rows), or too many for
    # 2 screen_rows to hold a k-th neighbour: the probe alone.
    for rows in (501, 100):
        info = {}
        build_knn(dict(SMALL, screen_rows=rows)).search(isotropic(), K, 1,
                                                        info)
        assert 'knn_screen_proven' not in info
        assert info['knn_choice'].startswith('auto: exact (probe')


def test_the_probes_rows_are_not_searched_again(monkeypatch):
    """The rows the probe searched keep its results: the search runs its
    passes on the other rows only, brute-forces the probe's unproven
    ones, and returns what a search of every row returns."""
    x = low_rank()
    ref_sims, ref_idx = knn_search(x, K + 1, 'exact', num_threads=1)
    searcher = build_knn(SMALL)
    searched = []
    first_pass = searcher.pca.first_pass
    monkeypatch.setattr(
        searcher.pca, 'first_pass',
        lambda x, z, sq, k, rows=None: searched.append(
            np.arange(len(x)) if rows is None else rows) or first_pass(
                x, z, sq, k, rows))
    info = {}
    sims, idx = searcher.search(x, K, 1, info)
    assert info['knn_choice'].startswith('auto: pca (probe')
    probe, rest = searched
    assert len(probe) == 512
    np.testing.assert_array_equal(np.sort(np.concatenate([probe, rest])),
                                  np.arange(len(x)))
    assert_brute_force_neighbours(sims, idx, ref_sims, ref_idx)


def test_known_rows_left_unproven_are_brute_forced():
    """Known rows flagged unproven get brute force's lists, in a search of
    every row and in a search of a range that holds some of them."""
    x = reid_like()
    pca = PCAKnn(dim=16, refine=2)
    z, sq_norms = pca.project(x)
    ref_sims, ref_idx = knn_search(x, K + 1, 'exact', num_threads=1)
    rows = np.arange(100, 3000, 100)
    # Wrong lists, all flagged unproven: brute force must replace them.
    wrong = np.tile(np.arange(K), (len(rows), 1))
    known = KnownRows(rows, np.zeros((len(rows), K), np.float32), wrong,
                      np.arange(len(rows)), np.arange(len(rows)))
    info = {}
    sims, idx = pca.search_projected(x, z, sq_norms, K, info, known=known)
    assert_brute_force_neighbours(sims, idx, ref_sims, ref_idx)
    # The known rows count as unproven and brute-forced.
    assert info['knn_unproven_rows'] >= len(rows)
    assert info['knn_brute_force_rows'] >= len(rows)
    # A range of rows 1000-1999 holds 10 of them.
    info = {}
    sims, idx = pca.search_projected(x, z, sq_norms, K, info,
                                     rows=slice(1000, 2000), known=known)
    assert len(sims) == 1000
    assert_brute_force_neighbours(sims, idx, ref_sims[1000:2000],
                                  ref_idx[1000:2000])
    assert info['knn_brute_force_rows'] >= 10


def test_auto_picks_the_projection_on_low_rank_features():
    x = low_rank()
    info = {}
    knn_search(x, K, SMALL, num_threads=1, info=info)
    choice = info['knn_choice']
    assert choice.startswith('auto: pca (probe proved ')
    assert 'of 512 sampled rows, PCA pays above ' in choice
    assert info['knn_path'] == 'pca verified'
    # The sample's proven share estimates that of all rows.
    proven = 1 - info['knn_brute_force_rows'] / len(x)
    assert proven > 0.9
    assert abs(info['knn_probe_proven'] - proven) < 0.05
    # The threshold stated is the cost model's, and it is met.
    need = float(choice.rsplit('above ', 1)[1].rstrip('%)')) / 100
    assert info['knn_probe_proven'] > need
    _, width = PCAKnn(dim=16, refine=2).sizes(len(x), x.shape[1], K)
    assert need >= 1 - PCA_MARGIN + pca_cost_share(
        len(x), x.shape[1], 16, K, width, 0, 0) - 0.005


def test_small_or_narrow_problems_skip_the_probe():
    x = low_rank(n=1200)
    info = {}
    _, idx = knn_search(x, K, 'auto', num_threads=1, info=info)
    assert info['knn_choice'] == 'auto: exact (N=1200 below min_rows=4096)'
    assert 'knn_probe_proven' not in info
    # 256 axes of 256-d features save nothing: no probe either.
    info = {}
    _, again = knn_search(
        x, K, dict(type='auto', min_rows=1000), num_threads=1, info=info)
    assert info['knn_choice'].startswith(
        'auto: exact (the projection costs at least ')
    assert 'knn_probe_proven' not in info
    np.testing.assert_array_equal(again, idx)


def test_the_choice_is_seeded():
    x = reid_like(n=2000)
    knn = dict(SMALL, probe_rows=200)
    infos = [{}, {}]
    for info in infos:
        knn_search(x, K, knn, num_threads=1, info=info)
    assert infos[0] == infos[1]
    assert 'of 200 sampled rows' in infos[0]['knn_choice']


def test_a_searcher_reuses_its_choice_then_probes_again(monkeypatch):
    """One searcher on one problem size probes at its first search and
    every ``reprobe_every`` searches after; in between it repeats the
    choice (brute force without the projection, or the projection without
    the probe), with the same neighbours."""
    for x, choice in ((isotropic(), 'exact'), (low_rank(), 'pca')):
        searcher = build_knn(dict(SMALL, reprobe_every=3))
        probes, projections = [], []
        probe, project = searcher._probe, searcher.pca.project
        monkeypatch.setattr(searcher, '_probe',
                            lambda *a: probes.append(1) or probe(*a))
        monkeypatch.setattr(
            searcher.pca, 'project',
            lambda *a: projections.append(1) or project(*a))
        first = {}
        ref = searcher.search(x, K, 1, first)
        assert first['knn_choice'].startswith(f'auto: {choice} (probe')
        assert first['knn_choice_reused'] is False
        reasons = []
        for call in range(4):
            info = {}
            probes.clear(), projections.clear()
            sims, idx = searcher.search(x, K, 1, info)
            reused = call != 2  # the third search after the probe probes
            assert info['knn_choice_reused'] is reused
            assert len(probes) == int(not reused)
            # The projection is computed when used or probed.
            assert len(projections) == int(choice == 'pca' or not reused)
            assert info['knn_choice'].startswith(f'auto: {choice} (')
            reasons.append(info['knn_choice'])
            np.testing.assert_array_equal(idx, ref[1])
            np.testing.assert_allclose(sims, ref[0], atol=1e-6)
        assert reasons[0] == (f'auto: {choice} (as at the last probe: '
                              f'{first["knn_choice"][len(choice) + 8:-1]}; '
                              'probed again in 2 searches)')
        assert reasons[1].endswith('probed again in 1 searches)')
        assert reasons[2] == first['knn_choice']
    # Another k (or N, or D) is another problem: a probe.
    info = {}
    searcher.search(low_rank(), K + 1, 1, info)
    assert info['knn_choice_reused'] is False


def test_the_generator_keeps_its_searcher():
    """The re-clustering of every epoch reuses the probe's choice."""
    gen = DBSCANLabelGenerator(k1=K, knn=dict(SMALL, reprobe_every=2),
                               num_threads=1, memory_check=False)
    x = low_rank()
    infos = [gen(x, return_info=True)[1] for _ in range(3)]
    assert [info['knn_choice_reused'] for info in infos] == [
        False, True, False]
    assert all(info['knn_choice'].startswith('auto: pca (')
               for info in infos)
    with pytest.raises(ValueError, match='reprobe_every must be'):
        build_knn(dict(type='auto', reprobe_every=0))


def test_auto_is_the_default():
    assert DEFAULT_KNN == 'auto'
    searcher = build_knn(DEFAULT_KNN)
    assert isinstance(searcher, AutoKnn) and searcher.name == 'auto'
    assert (searcher.min_rows, searcher.probe_rows, searcher.reprobe_every,
            searcher.screen_rows) == (4096, 512, 10, 1024)
    assert isinstance(searcher.pca, PCAKnn) and searcher.pca.verify
    assert (searcher.pca.dim, searcher.pca.refine,
            searcher.pca.train_size) == (256, 4, 2048)
    for knn in ('AutoKnn', dict(type='auto',
                                probe_rows=64), dict(type=AutoKnn)):
        assert type(build_knn(knn)) is AutoKnn
    assert type(KNN_SEARCHERS.build(dict(type='auto'))) is AutoKnn
    gen = DBSCANLabelGenerator()
    assert gen.knn == 'auto' and "knn='auto'" in repr(gen)
    assert 'DBSCANLabelGenerator(eps=0.6' in gen.describe()
    assert LABEL_GENERATORS.build(
        dict(type='DBSCANLabelGenerator')).knn == 'auto'


def test_generator_reports_the_choice():
    x = low_rank(n=600, dim=32)
    labels, info = DBSCANLabelGenerator(
        k1=10, num_threads=1)(
            x, return_info=True)
    assert info['knn_method'] == 'auto'
    assert info['knn_choice'] == 'auto: exact (N=600 below min_rows=4096)'
    exact = DBSCANLabelGenerator(k1=10, knn='exact', num_threads=1)(x)
    np.testing.assert_array_equal(labels, exact)


def test_bad_settings_and_memory():
    for knn, match in ((dict(type='auto', min_rows=0), 'min_rows must be'),
                       (dict(type='auto',
                             probe_rows=1.5), 'probe_rows must be'),
                       (dict(type='auto', dim=0), "'auto': dim must be"),
                       (dict(type='auto', screen_rows=-1),
                        r'screen_rows must be an int >= 0 \(0: no screen\)'),
                       (dict(type='auto', screen_rows='1024'),
                        'screen_rows must be an int >= 0'),
                       (dict(type='auto', screen_rows=True),
                        'screen_rows must be'),
                       (dict(type='auto', verify=False),
                        r"unknown parameters \['verify'\]")):
        with pytest.raises(ValueError, match=match):
            build_knn(knn)
    # Brute force's memory below min_rows, the projection's above.
    assert knn_memory(3000, 2048, 30,
                      'auto') == knn_memory(3000, 2048, 30, 'exact')
    assert knn_memory(100000, 2048, 30,
                      'auto') == knn_memory(100000, 2048, 30, 'pca')
    # A screen of many rows holds its rows x rows matrices.
    big_screen = knn_memory(30000, 2048, 30, dict(type='auto',
                                                  screen_rows=5000))
    assert big_screen >= 3 * 5000**2 * 4
    assert big_screen > knn_memory(30000, 2048, 30, 'auto')
