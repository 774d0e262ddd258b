"""Re-clustering under a memory limit: refused before any work, with the
estimate in the message, when the limit leaves too little; completed with
the same labels when it leaves what the estimate asks for.

The limits are set in a fresh process (``resource.setrlimit`` cannot be
undone there, and a failed allocation must not hit the test process),
relative to what it uses after its imports, so that the test does not
depend on how much memory torch and faiss map on this machine.
"""
import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r'''
import resource
import numpy as np
from mmreid_rcl.clustering import (ClusteringMemoryError,
                                   DBSCANLabelGenerator, clustering_memory)

MB = 1 << 20


def status(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) * 1024


def limited(name, field, room, call):
    """Run ``call`` with the soft limit ``name`` at what is in use plus
    ``room`` bytes, then lift it again."""
    which = getattr(resource, name)
    soft, hard = resource.getrlimit(which)
    resource.setrlimit(which, (status(field) + room, hard))
    try:
        return call()
    except ClusteringMemoryError as e:
        return 'REFUSED ' + str(e)
    finally:
        resource.setrlimit(which, (soft, hard))


rng = np.random.default_rng(0)
centres = rng.standard_normal((60, 32))
x = centres[rng.integers(60, size=1500)] + 0.4 * rng.standard_normal(
    (1500, 32))
x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
gen = DBSCANLabelGenerator(num_threads=1)
free = gen(x)  # without a limit (the libraries map their buffers here)
print('CLUSTERS', free.max() + 1)
for name, field in (('RLIMIT_DATA', 'VmData'), ('RLIMIT_AS', 'VmSize')):
    print(limited(name, field, 16 * MB, lambda: gen(x)))
need = clustering_memory(1500, 32, num_threads=1)
room = need['peak'] + need['reserved'] + 4 * MB
labels = limited('RLIMIT_DATA', 'VmData', room, lambda: gen(x))
print('SAME', bool((labels == free).all()))
'''


def test_refused_before_the_work_and_completed_within_the_estimate():
    proc = subprocess.run([sys.executable, '-c', SCRIPT],
                          cwd=str(REPO),
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    clusters = [line for line in lines if line.startswith('CLUSTERS')]
    assert int(clusters[0].split()[1]) > 40
    refused = [line for line in lines if line.startswith('REFUSED')]
    assert len(refused) == 2
    for line, name in zip(refused, ('RLIMIT_DATA', 'RLIMIT_AS')):
        assert line.startswith(
            'REFUSED re-clustering 1500 features of dim 32 with k1=30, '
            'k2=6 needs about 0.')
        assert 'GB are available (limit: ' + name + ' soft limit ' in line
        assert 'memory_check=False' in line
    # The estimate itself is enough under a real limit.
    assert 'SAME True' in lines
    # The estimate was logged before each attempt.
    assert proc.stderr.count(
        're-clustering N=1500, D=32, k1=30: needs about') + \
        proc.stdout.count(
            're-clustering N=1500, D=32, k1=30: needs about') == 4


def test_benchmark_rows_of_the_limited_runs():
    path = REPO / 'tools' / 'benchmarks' / 'bench_clustering.py'
    spec = importlib.util.spec_from_file_location('bench_clustering', path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    main = dict(knn='pca', wall=50.0, cpu=90.0, peak_mb=1800.0,
                above_start_mb=400.0, loadavg=1.0, memory_estimate_mb=420.0,
                labels_sha1='abc', num_clusters=5, num_outliers=1)
    base = dict(num=1000, dim=64, k1=30, k2=6, threads=2, cpus=2,
                limit_resource='RLIMIT_DATA', features_mb=0.25,
                vmdata_start_mb=1500.0, rss_start_mb=700.0)
    limited = [
        dict(base, limit_gb=3.0, outcome='completed', main=main,
             vmdata_peak_mb=2000.0, rss_peak_mb=1800.0, seconds=50.0),
        dict(base, limit_gb=1.6, outcome='refused', vmdata_peak_mb=1500.0,
             rss_peak_mb=700.5, seconds=0.1,
             error='re-clustering 1000 features ... needs about 0.41 GB'),
        dict(base, limit_gb=2.0, outcome='out of memory', seconds=20.0,
             error='Unable to allocate'),
    ]
    rows = bench.limit_rows(limited, [dict(num=1000, main=main)])
    assert [row['met'] for row in rows] == [True, True, False]
    assert all(row['target'] for row in rows)
    assert rows[0]['stage'] == ('re-clustering N=1,000 under a 3 GB memory '
                                'limit (RLIMIT_DATA)')
    assert 'completed in 50.0 s' in rows[0]['figure']
    assert 'labels identical to the run without a limit: True' in \
        rows[0]['comparison']
    assert 'estimate before clustering 420 MB' in rows[0]['comparison']
    assert rows[1]['figure'].startswith(
        'refused after 0.10 s, before clustering (RSS +0 MB): '
        're-clustering 1000 features')
    assert 'Unable to allocate' in rows[2]['figure']
    # Other labels than without the limit: not met.
    other = dict(limited[0], main=dict(main, labels_sha1='def'))
    assert bench.limit_rows([other], [dict(num=1000, main=main)])[0][
        'met'] is False
