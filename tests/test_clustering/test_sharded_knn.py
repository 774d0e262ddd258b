"""The kNN search sharded over the ranks of a distributed run: two gloo
processes give the neighbours, and the DBSCAN labels, of one process."""
import datetime
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.distributed as dist

from mmreid_rcl.clustering import DBSCANLabelGenerator
from mmreid_rcl.clustering.knn import (build_knn, camera_aware_knn, shard_rows,
                                       sharded_camera_aware_knn,
                                       sharded_knn_search)

N, K = 1001, 10  # N odd: the ranks' shares differ by one row
# Searches of the 'features' of _problems(), each exact but the last.
SEARCHES = dict(
    exact=('isotropic', 'exact'),
    # The first pass proves ~30% of the rows, the wider one most others,
    # brute force the rest: every step of the projected search runs.
    pca=('low_rank', dict(type='pca', dim=8, refine=2)),
    # 512-d low-rank features: the probe picks the projection.
    auto=('low_rank_512',
          dict(type='auto', min_rows=500, dim=8, refine=2, train_size=256)),
    # Approximate: searched by rank 0 and broadcast.
    hnsw=('isotropic', 'hnsw'))
GENERATORS = dict(
    dbscan=dict(k1=20, eps=0.5, knn=dict(type='pca', dim=8, refine=2)),
    dbscan_cameras=dict(k1=20, eps=0.5, camera_penalty=0.1))


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _low_rank(n, dim, rank, seed=0):
    """Identities in a ``rank``-dimensional subspace and a little noise."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((100, rank))[rng.integers(100, size=n)]
    z += 0.5 * rng.standard_normal((n, rank))
    embed = np.linalg.qr(rng.standard_normal((dim, rank)))[0].T
    noise = rng.standard_normal((n, dim)) / np.sqrt(dim)
    return _unit(z @ embed +
                 0.05 * np.linalg.norm(z, axis=1, keepdims=True) * noise)


def _people(num_ids=67, per_cam=5, num_cams=3, dim=64, seed=0):
    """Features of 1005 images of 67 people seen by 3 cameras (identity
    plus camera direction plus noise), and their cameras."""
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(num_ids), per_cam * num_cams)
    cams = np.tile(np.repeat(np.arange(num_cams), per_cam), num_ids)
    id_dirs = _unit(rng.standard_normal((num_ids, dim)))
    cam_dirs = _unit(rng.standard_normal((num_cams, dim)))
    x = id_dirs[ids] + 0.3 * cam_dirs[cams] + \
        0.5 * rng.standard_normal((len(ids), dim)) / np.sqrt(dim)
    return _unit(x), cams


def _problems():
    """The seeded features every process builds alike."""
    people, cams = _people()
    return dict(
        isotropic=_unit(
            np.random.default_rng(1).standard_normal((N, 64))),
        low_rank=_low_rank(N, 64, rank=12),
        low_rank_512=_low_rank(N, 512, rank=8),
        people=people,
        cameras=cams,
        random_cameras=np.random.default_rng(2).integers(4, size=N))


def _generator(name):
    return DBSCANLabelGenerator(
        min_samples=4, memory_check=False, num_threads=1,
        **GENERATORS[name])


def _hook_labels(name, people, cams):
    """Labels of ReClusterHook._cluster; also whether it sharded."""
    from mmreid_rcl.engine.hooks import ReClusterHook
    hook = ReClusterHook(label_generator=_generator(name))
    generator, calls = hook.label_generator, []
    search = generator.search_neighbours

    def spy(*args, **kwargs):
        calls.append(1)
        return search(*args, **kwargs)

    generator.search_neighbours = spy
    dataset = SimpleNamespace(get_camera_ids=lambda: cams)
    runner = SimpleNamespace(train_dataloader=SimpleNamespace(
        dataset=dataset))
    return hook._cluster(torch.from_numpy(people), runner), len(calls)


def _run_rank(rank, problems):
    """What one rank of two computes, as arrays and a JSON report."""
    arrays, report = {}, {}
    for name, (features, knn) in SEARCHES.items():
        info = {}
        arrays[f'{name}_sims'], arrays[f'{name}_idx'] = sharded_knn_search(
            problems[features], K, knn, num_threads=1, info=info)
        report[name] = info
    arrays['camera_sims'], arrays['camera_idx'] = sharded_camera_aware_knn(
        problems['isotropic'], K, problems['random_cameras'], 0.1, 1)
    people, cams = problems['people'], problems['cameras']
    for name in GENERATORS:
        generator = _generator(name)
        neighbours = generator.search_neighbours(people, cameras=cams)
        if rank == 0:
            labels, info = generator(
                people, return_info=True, cameras=cams,
                neighbours=neighbours)
            arrays[f'{name}_labels'] = labels
            report[name] = {k: v for k, v in info.items()
                            if not k.startswith('time')}
        arrays[f'{name}_hook'], report[f'{name}_hook_searches'] = \
            _hook_labels(name, people, cams)
    return arrays, report


def _worker(rank, store, out_dir):
    """One rank: its results written to ``out_dir``, then the group torn
    down (after a barrier, so that no rank leaves while the other still
    reads its last broadcast)."""
    dist.init_process_group(
        'gloo', init_method=f'file://{store}', rank=rank, world_size=2,
        timeout=datetime.timedelta(seconds=120))
    try:
        arrays, report = _run_rank(rank, _problems())
        np.savez(f'{out_dir}/rank{rank}.npz', **arrays)
        with open(f'{out_dir}/rank{rank}.json', 'w') as f:
            json.dump(report, f)
        dist.barrier()
    finally:
        dist.destroy_process_group()


# Each rank is a fresh interpreter (as under a launcher) that loads this
# file by its path and runs _worker.
_LAUNCH = r"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location('sharded_knn_test', sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module._worker(int(sys.argv[2]), sys.argv[3], sys.argv[4])
"""


@pytest.fixture(scope='module')
def ranks(tmp_path_factory):
    """The arrays and reports of both ranks of one 2-process run."""
    out = tmp_path_factory.mktemp('sharded')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    procs = [
        subprocess.Popen([
            sys.executable, '-c', _LAUNCH, __file__,
            str(rank),
            str(out / 'store'),
            str(out)
        ], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for rank in range(2)
    ]
    try:
        outs = [proc.communicate(timeout=600) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    for rank, (proc, (_, err)) in enumerate(zip(procs, outs)):
        assert proc.returncode == 0, f'rank {rank}: {err[-3000:]}'
    results = []
    for rank in range(2):
        with open(out / f'rank{rank}.json') as f:
            report = json.load(f)
        results.append((dict(np.load(out / f'rank{rank}.npz')), report))
    return results


@pytest.fixture(scope='module')
def problems():
    return _problems()


def test_shard_rows_split_contiguously():
    for n, world in ((1001, 2), (10, 3), (2, 4)):
        shards = [shard_rows(n, r, world) for r in range(world)]
        assert shards[0].start == 0 and shards[-1].stop == n
        assert all(a.stop == b.start for a, b in zip(shards, shards[1:]))
        sizes = [s.stop - s.start for s in shards]
        assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes)[::-1]


def assert_same_neighbours(sims, idx, ref_sims, ref_idx, ranking):
    """``idx`` equals ``ref_idx`` but where the BLAS rounding of a range
    of rows may swap two neighbours ranked by values within 1e-6 (none on
    these features here), and ``sims`` the reference's within 1e-5.

    ``ranking`` (N, K + 1) holds the values the reference ranks its
    neighbours by, one more than it kept, to tell a tie at the K-th
    place.
    """
    np.testing.assert_allclose(sims, ref_sims, atol=1e-5)
    near = np.abs(np.diff(ranking, axis=1)) <= 1e-6
    tied = near.copy()
    tied[:, 1:] |= near[:, :-1]
    differs = idx != ref_idx
    assert not (differs & ~tied).any()
    assert differs.any(axis=1).sum() <= 2


@pytest.mark.parametrize('name', sorted(SEARCHES))
def test_sharded_search_is_the_single_process_one(ranks, problems, name):
    features, knn = SEARCHES[name]
    info = {}
    sims, idx = build_knn(knn).search(problems[features], K, 1, info)
    ranking = build_knn('exact').search(problems[features], K + 1, 1)[0]
    for arrays, report in ranks:  # every rank gets the whole result
        if name == 'hnsw':  # rank 0's search, broadcast
            np.testing.assert_array_equal(arrays['hnsw_idx'], idx)
            np.testing.assert_array_equal(arrays['hnsw_sims'], sims)
        assert_same_neighbours(arrays[f'{name}_sims'], arrays[f'{name}_idx'],
                               sims, idx, ranking)
        assert arrays[f'{name}_sims'].dtype == np.float32
        got = report[name]
        assert got['knn_ranks'] == (1 if name == 'hnsw' else 2)
        assert got.get('knn_path') == info.get('knn_path')
        # Rows counted over both shards: the single-process counts.
        for key in ('knn_unproven_rows', 'knn_brute_force_rows'):
            assert got.get(key) == info.get(key)
    if name == 'pca':
        assert 0 < info['knn_brute_force_rows'] < \
            info['knn_unproven_rows'] < N
    if name == 'auto':
        assert ranks[0][1]['auto']['knn_choice'].startswith('auto: pca')


def test_sharded_camera_aware_search_is_the_single_process_one(
        ranks, problems):
    x, cams = problems['isotropic'], problems['random_cameras']
    sims, idx = camera_aware_knn(x, K, cams, 0.1, 1)
    # Ranked by the penalised similarity, the sample itself first.
    more_sims, more_idx = camera_aware_knn(x, K + 1, cams, 0.1, 1)
    ranking = more_sims - 0.1 * (cams[more_idx] == cams[:, None])
    ranking[:, 0] = 2
    for arrays, _ in ranks:
        assert_same_neighbours(arrays['camera_sims'], arrays['camera_idx'],
                               sims, idx, ranking)


@pytest.mark.parametrize('name', sorted(GENERATORS))
def test_dbscan_labels_with_sharded_neighbours(ranks, problems, name):
    people, cams = problems['people'], problems['cameras']
    labels, info = _generator(name)(people, return_info=True, cameras=cams)
    assert info['num_clusters'] > 20  # a real clustering
    arrays, report = ranks[0]
    np.testing.assert_array_equal(arrays[f'{name}_labels'], labels)
    assert report[name]['knn_method'] == info['knn_method']
    assert report[name]['num_clusters'] == info['num_clusters']
    if name == 'dbscan':
        assert report[name]['knn_ranks'] == 2
    # The hook searches on both ranks and broadcasts rank 0's labels.
    for arrays, report in ranks:
        np.testing.assert_array_equal(arrays[f'{name}_hook'], labels)
        assert report[f'{name}_hook_searches'] == 1


def test_one_process_is_the_plain_search(problems):
    x = problems['isotropic']
    info = {}
    sims, idx = sharded_knn_search(x, K, 'exact', num_threads=1, info=info)
    ref_sims, ref_idx = build_knn('exact').search(x, K, 1)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(sims, ref_sims)
    assert info == dict(knn_method='exact')


def test_rows_of_a_search():
    x = _unit(np.random.default_rng(2).standard_normal((50, 8)))
    sims, idx = build_knn('exact').search(x, 5, 1)
    part = build_knn('auto').search(x, 5, 1, rows=slice(10, 20))
    np.testing.assert_array_equal(part[1], idx[10:20])
    assert build_knn('pca').search(x, 5, 1, rows=slice(7, 7))[1].shape == \
        (0, 5)
    with pytest.raises(NotImplementedError, match="'hnsw' cannot search"):
        build_knn('hnsw').search(x, 5, 1, rows=slice(0, 10))
    with pytest.raises(ValueError, match='contiguous'):
        build_knn('exact').search(x, 5, 1, rows=slice(0, 10, 2))
    generator = DBSCANLabelGenerator(k1=5, k2=2, memory_check=False)
    neighbours = generator.search_neighbours(x)
    assert neighbours.indices.shape == (50, 5)
    assert 'time_knn' in neighbours.info
