import resource
import tracemalloc

import numpy as np
import pytest
import torch

from mmreid_rcl.clustering import (ClusteringMemoryError, DBSCANLabelGenerator,
                                   available_memory, clustering_memory)
from mmreid_rcl.clustering import dbscan_label_generator as generator_module
from mmreid_rcl.clustering import estimate_clustering_memory, memory
from mmreid_rcl.clustering.jaccard_distance import unit_features_copy_bytes
from mmreid_rcl.clustering.memory import MemoryBudget, memory_limits

MB = 1 << 20


def clustered(n=600, dim=32, num_ids=30, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_ids, dim))
    ids = rng.integers(num_ids, size=n)
    x = centres[ids] + 0.4 * rng.standard_normal((n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def test_estimate_grows_like_n_times_k():
    small = clustering_memory(50000, 2048, num_threads=2)
    large = clustering_memory(200000, 2048, num_threads=2)
    for est in (small, large):
        stages = [est[s] for s in ('knn', 'encoding', 'jaccard', 'dbscan')]
        assert est['peak'] == max(stages) + est['overhead']
        assert est['reserved'] == (memory.BLAS_BUFFER_BYTES +
                                   2 * memory.THREAD_STACK_BYTES)
    # Linear in N (with fixed block sizes), far from N * N.
    grown = (large['peak'] - large['overhead']) / (
        small['peak'] - small['overhead'])
    assert 2 < grown < 4.5
    base = estimate_clustering_memory(100000, 2048)
    assert estimate_clustering_memory(100000, 2048, k1=40) > base
    assert estimate_clustering_memory(100000, 2048, k2=10) > base
    assert estimate_clustering_memory(100000, 2048, k2=1) < base
    # Smaller blocks of the search and of the pair step need less.
    knn = clustering_memory(100000, 2048, knn='pca')['knn']
    assert clustering_memory(
        100000, 2048, knn=dict(type='pca', block_size=1 << 16))['knn'] < knn
    assert clustering_memory(100000, 2048, chunk_size=1 << 16)[
        'jaccard'] < clustering_memory(100000, 2048)['jaccard']
    # Approximate indexes hold a copy of what they search.
    assert clustering_memory(100000, 2048, knn='hnsw')['knn'] > 100000 * \
        2048 * 4
    assert clustering_memory(100000, 2048, knn=dict(
        type='ivf', dim=256))['knn'] < clustering_memory(
            100000, 2048, knn='ivf')['knn']
    with pytest.raises(ValueError, match='unknown knn method'):
        clustering_memory(1000, 64, knn='annoy')


def test_estimate_covers_what_numpy_allocates():
    x = clustered(n=3000, dim=64, num_ids=150)
    gen = DBSCANLabelGenerator(num_threads=1)
    tracemalloc.start()
    try:
        labels, info = gen(x, return_info=True)
        traced = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert labels.max() > 100
    est = clustering_memory(3000, 64, num_threads=1)
    assert info['memory_estimate'] == est['peak']
    # Never under what the arrays take (the libraries' buffers come on
    # top), and not absurdly above at this small size.
    assert est['peak'] - est['overhead'] >= traced
    assert est['peak'] < 4 * traced


def test_generator_logs_the_estimate_before_the_work(monkeypatch):
    logged = []
    monkeypatch.setattr(generator_module, 'print_log',
                        lambda msg, logger=None: logged.append(msg))
    x = clustered()
    labels, info = DBSCANLabelGenerator()(x, return_info=True)
    need = info['memory_estimate']
    assert logged == [
        f're-clustering N=600, D=32, k1=30: needs about '
        f'{need / 2**30:.2f} GB'
    ]
    assert 0 < need <= info['memory_available']
    # A float64 tensor is converted (and normalised): counted on top.
    logged.clear()
    DBSCANLabelGenerator()(torch.from_numpy(x.astype(np.float64) * 2))
    assert logged[0].endswith(f'{(need + 2 * x.nbytes) / 2**30:.2f} GB')
    # Without the check: no log, no estimate in the diagnostics.
    logged.clear()
    _, info = DBSCANLabelGenerator(memory_check=False)(x, return_info=True)
    assert logged == [] and 'memory_estimate' not in info


def test_refuses_before_any_allocation(monkeypatch):
    monkeypatch.setattr(generator_module, 'print_log', lambda *a, **k: None)
    monkeypatch.setattr(memory, 'available_memory',
                        lambda reserved=0: MemoryBudget(10 * MB, 'test'))

    def no_search(*args, **kwargs):
        raise AssertionError('searched although refused')

    monkeypatch.setattr(generator_module, 'knn_search', no_search)
    gen = DBSCANLabelGenerator(k1=20, k2=5)
    with pytest.raises(ClusteringMemoryError) as error:
        gen(clustered())
    assert isinstance(error.value, MemoryError)
    message = str(error.value)
    assert message.startswith(
        're-clustering 600 features of dim 32 with k1=20, k2=5 needs about '
        f'{gen.memory_estimate(600, 32)["peak"] / 2**30:.2f} GB, but only '
        '0.01 GB are available (limit: test); ')
    assert 'memory_check=False' in message
    with pytest.raises(TypeError, match='memory_check must be True or'):
        DBSCANLabelGenerator(memory_check='no')
    # The check can be switched off (here it reaches the search).
    with pytest.raises(AssertionError, match='searched although refused'):
        DBSCANLabelGenerator(memory_check=False)(clustered())


def test_checks_again_with_the_real_sizes(monkeypatch):
    monkeypatch.setattr(generator_module, 'print_log', lambda *a, **k: None)
    budgets = []
    monkeypatch.setattr(memory, 'available_memory',
                        lambda reserved=0: budgets.pop(0))
    x = clustered()
    plenty = MemoryBudget(1 << 40, 'test')
    # Enough for the estimate, then nothing left for the pair step.
    budgets[:] = [plenty, MemoryBudget(0, 'test')]
    with pytest.raises(ClusteringMemoryError,
                       match='^the Jaccard step of re-clustering 600 '
                       r'features with k1=30, k2=6 \(an encoding of \d+ '
                       r'entries per sample, 94 expected\) needs about'):
        DBSCANLabelGenerator()(x)
    # ... or nothing left for DBSCAN.
    budgets[:] = [plenty, plenty, MemoryBudget(0, 'test')]
    with pytest.raises(ClusteringMemoryError,
                       match=r'^DBSCAN of 600 features on \d+ distances'):
        DBSCANLabelGenerator()(x)
    assert budgets == []


def test_copy_bytes_of_the_input():
    x = clustered(n=100, dim=8)
    size = x.nbytes
    assert unit_features_copy_bytes(x) == 0
    assert unit_features_copy_bytes(torch.from_numpy(x)) == 0
    assert unit_features_copy_bytes(2 * x) == size  # normalised copy
    assert unit_features_copy_bytes(x.astype(np.float64)) == 2 * size
    assert unit_features_copy_bytes(np.asfortranarray(x)) == 2 * size
    assert unit_features_copy_bytes(torch.from_numpy(x).t()) == 2 * 800 * 4
    # Invalid input fails before any copy; the shape is checked later.
    bad = x.copy()
    bad[0, 0] = np.nan
    assert unit_features_copy_bytes(bad) == 0
    assert unit_features_copy_bytes(x[0]) == 0


def _fake_proc(tmp_path, cgroup_lines, mount_lines, vm_data_kb):
    proc = tmp_path / 'proc'
    proc.mkdir()
    (proc / 'cgroup').write_text('\n'.join(cgroup_lines) + '\n')
    (proc / 'mountinfo').write_text('\n'.join(mount_lines) + '\n')
    (proc / 'status').write_text(
        f'Name:\tpython\nVmSize:\t{4 * vm_data_kb} kB\n'
        f'VmData:\t{vm_data_kb} kB\n')
    return str(proc)


def test_limits_from_cgroup_v2_and_rlimit_data(tmp_path):
    mount = tmp_path / 'cg2'
    job = mount / 'jobs' / 'one'
    job.mkdir(parents=True)
    (job / 'memory.max').write_text(f'{1024 * MB}\n')
    (job / 'memory.current').write_text(f'{512 * MB}\n')
    (job / 'memory.stat').write_text(
        f'anon 1\nfile 2\ninactive_file {128 * MB}\nactive_file 3\n')
    (mount / 'jobs' / 'memory.max').write_text('max\n')
    proc = _fake_proc(
        tmp_path, ['0::/jobs/one'],
        [f'30 23 0:27 / {mount} rw,nosuid - cgroup2 cgroup2 rw'],
        vm_data_kb=1024 * 1024)
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = 1 << 45  # far above anything this test allocates
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    try:
        limits = memory_limits(reserved=64 * MB, proc=proc)
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
    by_name = {b.limit.split()[0]: b for b in limits}
    cgroup = by_name['cgroup']
    # 1 GB limit, 512 MB used of which 128 MB reclaimable page cache.
    assert cgroup.available == 640 * MB
    assert cgroup.limit == (f'cgroup {job / "memory.max"} 1.00 GB, 0.38 GB '
                            'in use')
    data = by_name['RLIMIT_DATA']
    assert data.available == limit - 1024 * MB - 64 * MB
    assert 'GB of writable memory in use, 0.06 GB kept for' in data.limit
    assert 'MemAvailable' in by_name


def test_limits_from_cgroup_v1(tmp_path):
    mount = tmp_path / 'memory'
    group = mount / 'batch'
    group.mkdir(parents=True)
    (group / 'memory.limit_in_bytes').write_text(f'{2048 * MB}\n')
    (group / 'memory.usage_in_bytes').write_text(f'{1536 * MB}\n')
    (group / 'memory.stat').write_text(
        f'cache 5\ntotal_inactive_file {512 * MB}\n')
    # The root reports "no limit" as a huge number.
    (mount / 'memory.limit_in_bytes').write_text('9223372036854771712\n')
    (mount / 'memory.usage_in_bytes').write_text('1\n')
    proc = _fake_proc(
        tmp_path, ['5:cpu:/other', '4:memory:/batch'], [
            f'35 31 0:32 / {mount} rw,relatime - cgroup cgroup rw,memory',
            f'36 31 0:33 / {tmp_path} rw,relatime - cgroup cgroup rw,cpu'
        ],
        vm_data_kb=1024)
    cgroups = [b for b in memory_limits(proc=proc)
               if b.limit.startswith('cgroup')]
    assert [b.available for b in cgroups] == [1024 * MB]
    assert 'memory.limit_in_bytes 2.00 GB, 1.00 GB in use' in \
        cgroups[0].limit


def test_available_memory_is_the_tightest_limit(monkeypatch):
    monkeypatch.setattr(memory, 'memory_limits', lambda reserved, proc: [
        MemoryBudget(5 * MB, 'a'), MemoryBudget(-3, 'b'),
        MemoryBudget(9 * MB, 'c')
    ])
    assert available_memory() == MemoryBudget(0, 'b')
    monkeypatch.setattr(memory, 'memory_limits', lambda reserved, proc: [])
    budget = available_memory()
    assert budget.available == float('inf') and budget.limit == 'none found'


def test_this_process_has_a_budget():
    budget = available_memory()
    assert budget.available > 0 and budget.limit
