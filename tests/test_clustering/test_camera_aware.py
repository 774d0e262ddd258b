"""Camera-aware neighbours: camera_aware_knn and DBSCANLabelGenerator's
camera_penalty."""
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from mmreid_rcl.clustering import (DBSCANLabelGenerator, camera_aware_knn,
                                   knn_search)


def camera_split_features(num_ids=24, per_cam=8, num_cams=2, dim=64,
                          cam_weight=0.7, noise=0.3, seed=0):
    """Unit features = identity direction + a camera direction shared by
    every image of a camera + noise. With ``cam_weight`` 0.7 two people
    of one camera are closer than one person's two cameras: plain
    neighbours split every person by camera."""
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(num_ids), per_cam * num_cams)
    cams = np.tile(np.repeat(np.arange(num_cams), per_cam), num_ids)
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa
    id_dirs = unit(rng.standard_normal((num_ids, dim)))
    cam_dirs = unit(rng.standard_normal((num_cams, dim)))
    x = id_dirs[ids] + cam_weight * cam_dirs[cams] + \
        noise * rng.standard_normal((len(ids), dim)) / np.sqrt(dim)
    return unit(x).astype(np.float32), ids, cams


def dense_reference(x, k, cams, penalty):
    """Every pair's penalised similarity in float64, each row fully
    sorted (self first, then decreasing score, ties by index)."""
    x = x.astype(np.float64)
    sims = x @ x.T
    score = sims - penalty * (cams[:, None] == cams[None, :])
    np.fill_diagonal(score, np.inf)
    order = np.array([np.lexsort((np.arange(len(x)), -row))[:k]
                      for row in score])
    return (np.take_along_axis(sims, order, 1),
            np.take_along_axis(score, order, 1), order)


def penalised(x, cams, penalty, idx):
    x = x.astype(np.float64)
    rows = np.arange(len(x))[:, None]
    score = np.einsum('nd,nkd->nk', x, x[idx]) - penalty * (
        cams[rows] == cams[idx])
    score[idx == rows] = np.inf
    return score


@pytest.fixture(scope='module')
def data():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((600, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    cams = rng.integers(0, 5, size=600) * 7 - 3  # any integers
    return x, cams


@pytest.mark.parametrize('penalty', [0.0, 0.05, 0.3, 1.5])
def test_matches_the_dense_reference(data, penalty):
    x, cams = data
    k = 20
    sims, idx = camera_aware_knn(x, k, cams, penalty)
    ref_sims, ref_score, ref_idx = dense_reference(x, k, cams, penalty)
    assert sims.dtype == np.float32 and idx.dtype == np.int64
    np.testing.assert_array_equal(idx[:, 0], np.arange(len(x)))
    # The same ranking scores (float32 inner products: 1e-6 of unit
    # vectors' products); the order may differ only between near-ties.
    score = penalised(x, cams, penalty, idx)
    np.testing.assert_allclose(score[:, 1:], ref_score[:, 1:], atol=1e-5)
    assert (idx == ref_idx).all(axis=1).mean() > 0.97
    # The plain inner products are returned, not the penalised ones.
    xd = x.astype(np.float64)
    np.testing.assert_allclose(
        sims, np.einsum('nd,nkd->nk', xd, xd[idx]), atol=1e-5)
    same = idx == ref_idx
    np.testing.assert_allclose(sims[same], ref_sims[same], atol=1e-5)


def test_hand_computed_case():
    # Angles from x0: x1 at 10 degrees (same camera), x2 at -20 degrees
    # (other camera), x3 at 90 degrees (same camera).
    deg = np.deg2rad([0, 10, -20, 90])
    x = np.stack([np.cos(deg), np.sin(deg)], 1).astype(np.float32)
    cams = np.array([0, 0, 1, 0])
    cos10, cos20 = np.cos(np.deg2rad(10)), np.cos(np.deg2rad(20))
    sims, idx = camera_aware_knn(x, 3, cams, 0.0)
    np.testing.assert_array_equal(idx[0], [0, 1, 2])
    # cos 10 - 0.1 = 0.885 < cos 20 = 0.940: the other camera first.
    sims, idx = camera_aware_knn(x, 3, cams, 0.1)
    np.testing.assert_array_equal(idx[0], [0, 2, 1])
    np.testing.assert_allclose(sims[0], [1, cos20, cos10], atol=1e-6)
    # x3: cos 80 - 0.1 (x1) against cos 110 (x2) and cos 90 - 0.1 (x0).
    np.testing.assert_array_equal(idx[3], [3, 1, 0])


def test_penalty_zero_and_one_camera_are_plain_knn(data):
    x, cams = data
    ref_sims, ref_idx = knn_search(x, 15, 'exact')
    for c, penalty in ((cams, 0.0), (np.full(len(x), 4), 0.5)):
        sims, idx = camera_aware_knn(x, 15, c, penalty)
        np.testing.assert_allclose(sims, ref_sims, atol=1e-5)
        assert (np.sort(idx, 1) == np.sort(ref_idx, 1)).all(axis=1).mean() \
            > 0.97


def test_blocks_and_small_cameras(data):
    x, cams = data
    cams = cams.copy()
    cams[:3] = 100  # a camera with fewer images than k
    whole = camera_aware_knn(x, 25, cams, 0.2)
    blocked = camera_aware_knn(x, 25, cams, 0.2, block_rows=64)
    np.testing.assert_allclose(whole[0], blocked[0], atol=1e-6)
    assert (whole[1] == blocked[1]).all(axis=1).mean() > 0.99
    # Every list holds k distinct samples, the small camera's included.
    for row in whole[1]:
        assert len(set(row)) == 25


def test_bad_input(data):
    x, cams = data
    with pytest.raises(ValueError, match=r'cameras must have one entry'):
        camera_aware_knn(x, 5, cams[:-1], 0.1)
    with pytest.raises(ValueError, match=r'k must be in \[1, N=600\]'):
        camera_aware_knn(x, 601, cams, 0.1)
    for bad in (-0.1, float('nan')):
        with pytest.raises(ValueError, match='penalty must be'):
            camera_aware_knn(x, 5, cams, bad)


def test_generator_joins_the_cameras_of_a_person():
    x, ids, cams = camera_split_features()
    cross = (ids[:, None] == ids[None]) & (cams[:, None] != cams[None])

    def cluster(penalty):
        gen = DBSCANLabelGenerator(
            eps=0.5, min_samples=3, k1=12, k2=3, camera_penalty=penalty,
            memory_check=False)
        labels = gen(x, cameras=cams)
        joined = (labels[:, None] == labels[None]) & (labels[:, None] >= 0)
        return labels, (joined & cross).sum() / cross.sum()

    plain, plain_recall = cluster(0.0)
    aware, aware_recall = cluster(0.3)
    # Plain neighbours: every person split in two (48 clusters).
    assert plain.max() + 1 == 48 and plain_recall == 0
    # Camera-aware: the 24 people, each over both cameras.
    assert aware_recall == 1
    assert adjusted_rand_score(ids, aware) == 1.0


def test_generator_settings_and_errors():
    x, ids, cams = camera_split_features()
    gen = DBSCANLabelGenerator(camera_penalty=0.1, k1=12, k2=3)
    assert gen.uses_cameras
    assert not DBSCANLabelGenerator().uses_cameras
    assert 'camera_penalty=0.1' in repr(gen)
    with pytest.raises(ValueError, match='camera_penalty=0.1 needs the '
                       'camera of every image'):
        gen(x)
    with pytest.raises(ValueError, match=r'one entry per feature row \(384'):
        gen(x, cameras=cams[:10])
    for bad in (True, -0.1, 2.0, '0.1', None):
        with pytest.raises(ValueError, match='camera_penalty must be'):
            DBSCANLabelGenerator(camera_penalty=bad)
    # A generator without cameras ignores them.
    plain = DBSCANLabelGenerator(eps=0.5, min_samples=3, k1=12, k2=3)
    np.testing.assert_array_equal(plain(x, cameras=cams), plain(x))


def test_hook_reads_the_train_set_cameras():
    from types import SimpleNamespace

    from mmreid_rcl.engine.hooks import ReClusterHook

    class WithCameras:
        def get_camera_ids(self):
            return [1, 2, 1]

    def runner(dataset):
        return SimpleNamespace(
            train_dataloader=SimpleNamespace(dataset=dataset))

    hook = ReClusterHook(
        label_generator=dict(type='DBSCANLabelGenerator', camera_penalty=0.1))
    np.testing.assert_array_equal(
        hook._cameras(runner(WithCameras())), [1, 2, 1])
    with pytest.raises(ValueError, match='camera_penalty=0.1.*has no '
                       'camera ids'):
        hook._cameras(runner(object()))
    # A generator that ignores cameras asks for none.
    plain = ReClusterHook(label_generator=dict(type='DBSCANLabelGenerator'))
    assert plain._cameras(runner(object())) is None


def test_sweep_over_the_camera_penalty():
    from mmreid_rcl.clustering.diagnostics import sweep_label_generator
    x, ids, cams = camera_split_features()
    settings = dict(type='DBSCANLabelGenerator', eps=0.5, min_samples=3,
                    k1=12, k2=3, memory_check=False)
    rows = sweep_label_generator(x, ids, settings, [0.0, 0.3],
                                 key='camera_penalty', cameras=cams)
    assert [r['camera_penalty'] for r in rows] == [0.0, 0.3]
    assert [r['cross_camera_recall'] for r in rows] == [0.0, 1.0]
    assert [r['num_clusters'] for r in rows] == [48, 24]
    # Without cameras the recall column is left out, and a generator
    # that needs cameras says so.
    assert 'cross_camera_recall' not in sweep_label_generator(
        x, ids, settings, [0.0], key='camera_penalty')[0]
    with pytest.raises(ValueError, match='needs the camera of every image'):
        sweep_label_generator(x, ids, settings, [0.3], key='camera_penalty')
    with pytest.raises(ValueError, match='one camera per feature row'):
        sweep_label_generator(x, ids, settings, [0.3],
                              key='camera_penalty', cameras=cams[:5])
