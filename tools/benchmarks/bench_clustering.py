"""Benchmark pseudo-label clustering on synthetic re-ID features.

Seeded, L2-normalised features (2048-d by default) imitate a train split
in the middle of training: identities of varying size (about 17 images
each, as in Market-1501), look-alike identities, per-camera shifts, and a
share of hard images far from their identity, so that DBSCAN leaves
outliers and merges some look-alikes.

The default run clusters 12,936 (Market-1501), 32,621 (MSMT17) and 100,000
features with the default label generator (k1=30, k2=6, DBSCAN eps 0.6,
min_samples 4, the ``'auto'`` search: brute force or the verified
projection, whichever a probe finds faster; both return the exact
neighbours), checks its labels against brute-force exact kNN up to
``--exact-max`` samples, and at ``--approx-at`` (32,621) also clusters with
the approximate ``--approx-knn`` searches (the kNN graphs of pynndescent
and of faiss' NN-descent, HNSW and IVF, all on 256 principal axes) to
measure their time, memory, kNN recall
and how far their clusters are from exact (ARI; target: recall and ARI
of at least 0.95). Sizes above ``--approx-above`` (300,000) are clustered
with the first approximate search, pynndescent; ``--million`` adds
1,000,000 features (7.8 GB of features; target: 30 minutes, 12 GB,
recall@30 0.95). ``--num 100000 --approx-at 100000 --million`` measures
the approximate clusters against exact ones on 100,000 in the same run.

``--families`` chooses the feature distributions, each clustered at every
size: ``synthetic`` (the generator above, default), ``isotropic``
(Gaussian noise around ``N / 17.2`` random unit centres: no direction
matters, the verified projection proves nothing) and feature files of a
real model (``.npz`` of ``extract_features.py`` or of
``make_view_features.py``, which reaches 12,936 and 32,621 rows of real
CUHK03 images through mirrored and cropped views; the first N rows are
clustered, and their ``pids`` measure the clusters when stored). Rows name
the family; the public implementation's measured figures (``PUBLIC``) are
those of the synthetic family only, the dense reference
(``--compare-reference``) runs on whichever family in the same run.

Each size runs in a fresh subprocess. Memory is the VmHWM of
/proc/self/status (which sees numpy, scipy and faiss alike), reset before
each clustering: ``peak`` is the whole process (interpreter, libraries,
features and clustering) and ``above start`` the clustering's own
allocations on top of the features it is given. Times are wall and CPU
seconds (all threads); other jobs on the machine lengthen the wall time,
so the load average is recorded with each figure.

``--memory-limit-gb G [G ...]`` also clusters the largest size once under
each limit: a fresh process makes the features, then sets its
``RLIMIT_DATA`` (``ulimit -d``) to G GB and clusters, so the whole process
(interpreter, torch, faiss, the features and the clustering) must fit in
G GB of writable memory. ``RLIMIT_AS`` (``--limit-resource as``) cannot
serve for a few GB: a CUDA build of torch maps 3.6 GB of address space at
import (libraries and reservations it never touches), and it takes 1.2 GB
of the writable memory too, most of it never touched. The row says
whether the clustering completed (time, peak RSS, peak writable memory
sampled every 2 ms, the label generator's estimate, labels against the
run without a limit) or was refused before it allocated anything (the
message, with the estimate); a MemoryError in the middle does not meet
the target.

``--json OUT`` writes rows ``{stage, figure, comparison, target, met}``
plus the raw numbers (what ``tools/benchmarks/run_all.py`` tabulates).

Examples::

    python tools/benchmarks/bench_clustering.py --threads 2 --json c.json
    python tools/benchmarks/bench_clustering.py --num 12936 \\
        --compare-reference
    python tools/benchmarks/bench_clustering.py --num 2000   # a smoke run
    python tools/benchmarks/bench_clustering.py --num 12936 --million
    python tools/benchmarks/bench_clustering.py --num 100000 \\
        --memory-limit-gb 3 2.2
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from typing import Optional, Tuple

import numpy as np

from mmreid_rcl.apis.feature_families import FAMILIES, family_name, load_family

# Largest N for the dense reference (three N x N float32 matrices).
REFERENCE_MAX_N = 20000


def reference_jaccard(x: np.ndarray,
                      k1: int,
                      k2: int,
                      rank: Optional[np.ndarray] = None
                      ) -> Tuple[np.ndarray, np.ndarray]:
    """Dense Jaccard distance the way the public cluster-contrast code
    computes it: faiss IndexFlatL2 search, N x N float32 arrays and
    per-sample Python loops. Returns it with the neighbour lists used.

    Only here to time the established approach and check agreement.
    """
    import faiss
    n = x.shape[0]
    if rank is None:
        index = faiss.IndexFlatL2(x.shape[1])
        index.add(x)
        _, rank = index.search(x, k1)
        del index

    def reciprocal(i, k):
        forward = rank[i, :k + 1]
        backward = rank[forward, :k + 1]
        return forward[np.nonzero(backward == i)[0]]

    half = int(np.around(k1 / 2))
    full_sets = [reciprocal(i, k1) for i in range(n)]
    half_sets = [reciprocal(i, half) for i in range(n)]
    v = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        r = full_sets[i]
        expanded = r
        for c in r:
            h = half_sets[c]
            if len(np.intersect1d(h, r)) > 2 / 3 * len(h):
                expanded = np.append(expanded, h)
        expanded = np.unique(expanded)
        w = np.exp(-(2 - 2 * (x[expanded] @ x[i])))
        v[i, expanded] = w / w.sum()
    if k2 != 1:
        v_qe = np.zeros_like(v)
        for i in range(n):
            v_qe[i] = v[rank[i, :k2]].mean(axis=0)
        v = v_qe
        del v_qe
    inverted = [np.nonzero(v[:, j])[0] for j in range(n)]
    jac = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        acc = np.zeros(n, dtype=np.float32)
        for j in np.nonzero(v[i])[0]:
            rows = inverted[j]
            acc[rows] += np.minimum(v[i, j], v[rows, j])
        jac[i] = 1 - acc / (2 - acc)
    np.maximum(jac, 0, out=jac)
    return jac, rank


# Figures of the established public implementation (dense N x N Jaccard
# with per-sample Python loops and exact faiss kNN), seconds and MB.
# Memory in MB of 2**20 bytes, as /proc reports it (1 GB = 1024 MB).
PUBLIC = {12936: (17.5, 2.7 * 1024), 32621: (79.0, 13 * 1024)}
# Targets: wall seconds, process peak MB (None: no bound) and whether the
# labels must equal those of exact kNN.
TARGETS = {
    12936: dict(seconds=3.5, memory_mb=None, same_as_exact=True),
    32621: dict(seconds=15.8, memory_mb=1.3 * 1024, same_as_exact=True),
    100000: dict(seconds=120, memory_mb=4 * 1024, same_as_exact=True),
}
# Targets of the approximate searches: kNN recall, ARI against the
# clusters of exact kNN (where both run), and at 1,000,000 wall seconds
# and process peak MB.
APPROX_TARGETS = dict(recall=0.95, ari=0.95, seconds=1800,
                      memory_mb=12 * 1024)
SCALE_NAMES = {12936: 'Market-1501 scale', 32621: 'MSMT17 scale'}
DEFAULT_SIZES = [12936, 32621, 100000]
MILLION = 1000000
# Approximate searches compared with exact (at --approx-at), the first of
# them also used for --million.
DEFAULT_APPROX = [{
    'type': 'pynndescent'
}, {
    'type': 'nndescent'
}, {
    'type': 'hnsw',
    'dim': 256
}, {
    'type': 'ivf',
    'dim': 256,
    'nprobe': 16
}]


def _status_kb(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    return -1


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


class _VmDataPeak:
    """The highest VmData (writable private memory, what RLIMIT_DATA
    limits) seen every ``interval`` seconds by a thread; Linux keeps no
    high-water mark of it."""

    def __init__(self, interval: float = 0.002) -> None:
        self.peak = _status_kb('VmData')
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, _status_kb('VmData'))

    def stop(self) -> int:
        """Stop sampling; the peak in kB."""
        self._stop.set()
        self._thread.join()
        return max(self.peak, _status_kb('VmData'))


def _labels_digest(labels: np.ndarray) -> str:
    return hashlib.sha1(
        np.ascontiguousarray(labels, dtype=np.int64).tobytes()).hexdigest()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _recall_queries(n: int, seed: int, num: int = 1000) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    return np.sort(rng.choice(n, min(num, n), replace=False))


def _knn_recall(x: np.ndarray, queries: np.ndarray, found: np.ndarray,
                k: int, threads) -> dict:
    """Share of the exact k (and 10) nearest neighbours of ``queries`` that
    a search ``found``, the exact ones searched by brute force."""
    import faiss

    from mmreid_rcl.utils.threads import faiss_num_threads
    with faiss_num_threads(threads):
        _, exact = faiss.knn(x[queries], x, k, faiss.METRIC_INNER_PRODUCT)

    def recall(m):
        hits = [
            len(np.intersect1d(a[:m], e[:m])) for a, e in zip(found, exact)
        ]
        return float(np.mean(hits) / m)

    return dict(knn_recall=recall(k), knn_recall10=recall(min(10, k)))


@contextmanager
def _capture_neighbours(queries: Optional[np.ndarray], store: dict):
    """Keep the neighbour lists of ``queries`` that the label generator's
    search returns (a copy of those rows only, so the clustering's memory
    is unchanged)."""
    from mmreid_rcl.clustering import dbscan_label_generator as module
    if queries is None:
        yield
        return
    search = module.knn_search

    def capturing(*args, **kwargs):
        sims, indices = search(*args, **kwargs)
        store['indices'] = indices[queries].copy()
        return sims, indices

    module.knn_search = capturing
    try:
        yield
    finally:
        module.knn_search = search


def _cluster(x: np.ndarray, knn, spec: dict,
             recall: bool = False) -> Tuple[np.ndarray, dict]:
    """One clustering with the label generator; its time, CPU and memory,
    and with ``recall`` the recall of its kNN search."""
    from mmreid_rcl.registry import LABEL_GENERATORS

    gen = LABEL_GENERATORS.build(
        dict(
            type='DBSCANLabelGenerator',
            eps=spec['eps'],
            min_samples=spec['min_samples'],
            k1=spec['k1'],
            k2=spec['k2'],
            knn=knn,
            num_threads=spec['threads']))
    peak_is_own = _reset_peak()
    rss0 = _status_kb('VmRSS')
    load0 = os.getloadavg()[0]
    queries = _recall_queries(len(x), spec['seed']) if recall else None
    captured = {}
    cpu0 = _cpu_seconds()
    main0 = time.thread_time()
    t0 = time.perf_counter()
    with _capture_neighbours(queries, captured):
        labels, info = gen(x, return_info=True)
    out = dict(
        knn=knn,
        wall=time.perf_counter() - t0,
        cpu=_cpu_seconds() - cpu0,
        # The main thread runs the serial parts and its share of every
        # OpenMP / BLAS region: its CPU time is close to the wall time on
        # idle cores (plus half the Jaccard workers' time).
        cpu_main_thread=time.thread_time() - main0,
        peak_mb=_status_kb('VmHWM') / 1024,
        above_start_mb=(_status_kb('VmHWM') - rss0) / 1024,
        peak_is_own=peak_is_own,
        loadavg=max(load0, os.getloadavg()[0]),
        num_clusters=int(info['num_clusters']),
        num_outliers=int(info['num_outliers']))
    out.update({
        k: v
        for k, v in info.items() if k.startswith(('time_', 'knn_'))
    })
    out['distance_nnz'] = int(info['distance_nnz'])
    out['memory_estimate_mb'] = info.get('memory_estimate', 0) / 2**20
    out['labels_sha1'] = _labels_digest(labels)
    if recall:
        out.update(_knn_recall(x, queries, captured['indices'], spec['k1'],
                               spec['threads']))
    return labels, out


def run_worker(spec: dict) -> dict:
    """One size, in this (fresh) process; returns the measurements."""
    from sklearn.metrics import adjusted_rand_score

    from mmreid_rcl.clustering import cluster_quality

    n = spec['num']
    family = spec.get('family', 'synthetic')
    t0 = time.perf_counter()
    x, ids = load_family(family, n, spec['dim'], spec['ids'], spec['seed'])
    out = dict(
        num=n,
        family=family,
        ids=None if ids is None else int(len(np.unique(ids))),
        dim=x.shape[1],
        k1=spec['k1'],
        threads=spec['threads'],
        cpus=os.cpu_count(),
        time_generate=time.perf_counter() - t0,
        features_mb=x.nbytes / 2**20)

    def quality(found):
        if ids is None:
            return {}
        return {
            f'quality_{k}': v
            for k, v in cluster_quality(found, ids).items()
            if k not in ('num_clusters', 'num_outliers')
        }

    # Start the thread pools (faiss, BLAS) before any timed run.
    from mmreid_rcl.clustering import knn_search
    knn_search(x[:min(n, 512)], min(n, 10), 'exact', spec['threads'])
    labels, main = _cluster(x, spec['knn'], spec, recall=spec['recall'])
    main.update(quality(labels))
    out['main'] = main

    if spec['exact']:
        exact_labels, exact = _cluster(x, 'exact', spec)
        exact['ari_vs_main'] = float(adjusted_rand_score(exact_labels,
                                                         labels))
        exact['same_labels'] = bool((exact_labels == labels).all())
        out['exact'] = exact
        del exact_labels

    out['approx'] = []
    for knn in spec['approx']:
        approx_labels, approx = _cluster(x, knn, spec, recall=True)
        approx['ari_vs_main'] = float(
            adjusted_rand_score(labels, approx_labels))
        approx['same_labels'] = bool((approx_labels == labels).all())
        approx.update(quality(approx_labels))
        out['approx'].append(approx)

    if spec['reference']:
        out['reference'] = _compare_reference(x, labels, spec)
    return out


def _apply_limit(spec: dict) -> None:
    """Set the soft rlimit of ``spec`` (``limit_resource``, ``limit_gb``)
    in this process."""
    name = {'data': 'RLIMIT_DATA', 'as': 'RLIMIT_AS'}[spec['limit_resource']]
    which = getattr(resource, name)
    limit = int(spec['limit_gb'] * 2**30)
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(which, (limit, hard))


def run_limited_worker(spec: dict) -> dict:
    """One size in this process: make the features, put the process under
    ``spec['limit_gb']``, then cluster or be refused."""
    from mmreid_rcl.clustering import ClusteringMemoryError

    n = spec['num']
    out = dict(
        num=n,
        dim=spec['dim'],
        k1=spec['k1'],
        k2=spec['k2'],
        threads=spec['threads'],
        cpus=os.cpu_count(),
        limit_gb=spec['limit_gb'],
        limit_resource=spec['limit_resource'],
        knn=spec['knn'])
    t0 = time.perf_counter()
    x, _ = load_family(spec.get('family', 'synthetic'), n, spec['dim'],
                       spec['ids'], spec['seed'])
    out['time_generate'] = time.perf_counter() - t0
    out['features_mb'] = x.nbytes / 2**20
    out['vmdata_start_mb'] = _status_kb('VmData') / 1024
    out['rss_start_mb'] = _status_kb('VmRSS') / 1024
    sampler = _VmDataPeak()
    _apply_limit(spec)
    _reset_peak()
    t0 = time.perf_counter()
    try:
        labels, main = _cluster(x, spec['knn'], spec)
        out.update(outcome='completed', main=main)
    except ClusteringMemoryError as e:
        out.update(outcome='refused', error=str(e))
    except MemoryError as e:
        out.update(outcome='out of memory', error=str(e) or 'MemoryError')
    out['seconds'] = time.perf_counter() - t0
    out['vmdata_peak_mb'] = sampler.stop() / 1024
    out['rss_peak_mb'] = _status_kb('VmHWM') / 1024
    return out


def _neighbours(x: np.ndarray, spec: dict):
    from mmreid_rcl.clustering import knn_search
    return knn_search(x, spec['k1'], spec['knn'], spec['threads'])


def _compare_reference(x: np.ndarray, labels: np.ndarray,
                       spec: dict) -> dict:
    """The dense public-style computation on the same features."""
    from sklearn.cluster import DBSCAN
    from sklearn.metrics import adjusted_rand_score

    from mmreid_rcl.clustering import jaccard_distance, relabel_by_first_member
    from mmreid_rcl.utils.threads import faiss_num_threads
    if len(x) > REFERENCE_MAX_N:
        return dict(skipped=f'N > {REFERENCE_MAX_N}')
    _reset_peak()
    rss0 = _status_kb('VmRSS')
    cpu0 = _cpu_seconds()
    t0 = time.perf_counter()
    with faiss_num_threads(spec['threads']):
        ref, rank = reference_jaccard(x, spec['k1'], spec['k2'])
    t1 = time.perf_counter()
    ref_labels = relabel_by_first_member(
        DBSCAN(
            eps=spec['eps'], min_samples=spec['min_samples'],
            metric='precomputed', n_jobs=-1).fit_predict(ref))
    t2 = time.perf_counter()
    out = dict(
        time_jaccard=t1 - t0,
        time_dbscan=t2 - t1,
        wall=t2 - t0,
        cpu=_cpu_seconds() - cpu0,
        above_start_mb=(_status_kb('VmHWM') - rss0) / 1024,
        ari=float(adjusted_rand_score(ref_labels, labels)),
        same_labels=bool((ref_labels == labels).all()))
    # The L2 and inner-product searches may order near-ties differently;
    # the distances are compared on the same lists.
    _, ours_rank = _neighbours(x, spec)
    out['knn_rows_differing'] = int(
        (np.sort(rank, axis=1) != np.sort(ours_rank, axis=1)).any(
            axis=1).sum())
    ref_sims = np.concatenate([
        np.einsum('nd,nkd->nk', x[i:i + 512], x[rank[i:i + 512]])
        for i in range(0, len(x), 512)
    ])
    ours = jaccard_distance(
        x, spec['k1'], spec['k2'], neighbours=(ref_sims, rank)).tocoo()
    out['max_abs_diff'] = float(
        np.abs(ref[ours.row, ours.col] - ours.data).max())
    stored = np.zeros(ref.shape, dtype=bool)
    stored[ours.row, ours.col] = True
    out['min_absent'] = float(ref[~stored].min(initial=1.0))
    return out


# -- report -----------------------------------------------------------------
def _is_exact(knn) -> bool:
    """Whether a search returns the exact neighbours."""
    from mmreid_rcl.clustering.knn import AutoKnn, ExactKnn, PCAKnn, build_knn
    searcher = build_knn(knn)
    return isinstance(searcher, (ExactKnn, AutoKnn)) or (
        isinstance(searcher, PCAKnn) and searcher.verify)


def _knn_name(knn) -> str:
    if isinstance(knn, str):
        return knn
    params = ', '.join(f'{k}={v}' for k, v in knn.items() if k != 'type')
    return f'{knn["type"]}({params})' if params else knn['type']


def _mb(value: float) -> str:
    return f'{value / 1024:.3g} GB' if value >= 1024 else f'{value:.0f} MB'


def _fmt(r: dict) -> str:
    m = r['main']
    lines = [
        f"{family_name(r.get('family', 'synthetic'))}: N={r['num']:,} "
        f"ids={r['ids'] or 'unknown'} D={r['dim']} threads="
        f"{r['threads'] or r['cpus']} (features {r['features_mb']:.0f} MB, "
        f"generated in {r['time_generate']:.1f} s)"
    ]

    def run_line(name, c):
        line = (f"  {name:7s} {_knn_name(c['knn'])}: {c['wall']:.2f} s wall"
                f" (CPU {c['cpu']:.1f} s; kNN {c['time_knn']:.2f} | Jaccard "
                f"{c['time_jaccard']:.2f} | DBSCAN {c['time_dbscan']:.2f}), "
                f"peak {_mb(c['peak_mb'])} ({_mb(c['above_start_mb'])} above "
                f"start), load avg {c['loadavg']:.1f}; {c['num_clusters']} "
                f"clusters, {c['num_outliers']:,} outliers")
        if 'knn_brute_force_rows' in c:
            line += (f"; rows not proven by the first pass "
                     f"{c['knn_unproven_rows']}, searched by brute force "
                     f"{c['knn_brute_force_rows']}")
        if 'knn_recall' in c:
            line += (f"; kNN recall vs exact (1000 queries) "
                     f"@{r['k1']} {c['knn_recall']:.3f}, @10 "
                     f"{c['knn_recall10']:.3f}")
        if 'ari_vs_main' in c:
            line += (f"; ARI vs main {c['ari_vs_main']:.4f} (identical: "
                     f"{c['same_labels']})")
        return line

    lines.append(run_line('main', m))
    if 'quality_purity' in m:
        lines.append(
            f"          purity {m['quality_purity']:.3f} NMI "
            f"{m['quality_nmi']:.3f} ARI vs true ids {m['quality_ari']:.3f}"
            f" (all {m['quality_ari_all']:.3f}); distance entries "
            f"{m['distance_nnz']:,}")
    if 'exact' in r:
        lines.append(run_line('exact', r['exact']))
    for a in r.get('approx', []):
        lines.append(run_line('approx', a))
    ref = r.get('reference')
    if ref and 'skipped' in ref:
        lines.append(f"  dense reference {ref['skipped']}")
    elif ref:
        lines.extend((
            f"  dense reference: Jaccard {ref['time_jaccard']:.2f} s + "
            f"DBSCAN {ref['time_dbscan']:.2f} s = {ref['wall']:.2f} s "
            f"(CPU {ref['cpu']:.1f} s), {_mb(ref['above_start_mb'])} above "
            f"start; labels ARI {ref['ari']:.4f} (identical: "
            f"{ref['same_labels']})",
            f"  on the reference's neighbour lists (which differ from ours "
            f"in {ref['knn_rows_differing']} rows, near-ties): max "
            f"|d - d_ref| on stored pairs {ref['max_abs_diff']:.1e}, min "
            f"d_ref of absent pairs {ref['min_absent']:.6f}"))
    return '\n'.join(lines)


def _raw(r: dict, c: dict) -> dict:
    """Flat raw numbers of one clustering run."""
    keys = ('wall', 'cpu', 'cpu_main_thread', 'peak_mb', 'above_start_mb',
            'loadavg',
            'time_knn', 'time_jaccard', 'time_dbscan', 'num_clusters',
            'num_outliers', 'distance_nnz', 'knn_unproven_rows',
            'knn_brute_force_rows', 'knn_recall', 'knn_recall10',
            'ari_vs_main', 'same_labels')
    raw = dict(num=r['num'], family=r.get('family', 'synthetic'),
               dim=r['dim'], features_mb=r['features_mb'],
               threads=r['threads'] or r['cpus'], knn=_knn_name(c['knn']))
    raw.update({k: c[k] for k in keys if k in c})
    return raw


def build_rows(results: list) -> list:
    """Table rows ``{stage, figure, comparison, target, met}`` with the raw
    numbers of each run."""
    rows = []
    for r in results:
        n, m = r['num'], r['main']
        scale = SCALE_NAMES.get(n)
        family = r.get('family', 'synthetic')
        stage = f're-clustering N={n:,}' + (f' ({scale})' if scale else '')
        stage += f', {family_name(family)}'
        exact = r.get('exact')
        approximate = not _is_exact(m['knn'])
        if approximate:
            stage += f', approximate kNN {_knn_name(m["knn"])}'
        figure = (f"{m['wall']:.1f} s wall ({m['cpu']:.1f} s CPU), "
                  f"{_mb(m['peak_mb'])} peak ({_mb(m['above_start_mb'])} "
                  f"above the {r['features_mb']:.0f} MB of features); load "
                  f"avg {m['loadavg']:.1f}")
        parts = []
        if n in PUBLIC and family == 'synthetic':
            sec, mem = PUBLIC[n]
            own = m['above_start_mb'] + r['features_mb']
            parts.append(f'public impl. {sec:g} s, {_mb(mem)}: '
                         f'{sec / m["wall"]:.1f}x faster; process peak '
                         f'{mem / m["peak_mb"]:.1f}x smaller, clustering '
                         f'with its features {_mb(own)} '
                         f'({mem / own:.0f}x smaller)')
        if exact is not None:
            same = 'identical' if exact['same_labels'] else 'not identical'
            parts.append(
                f"labels vs brute-force exact kNN: ARI "
                f"{exact['ari_vs_main']:.4f} ({same}); that run "
                f"{exact['wall']:.1f} s ({exact['cpu']:.1f} s CPU); "
                f"{_knn_name(m['knn'])} kNN {m['time_knn']:.2f} s vs brute "
                f"force {exact['time_knn']:.2f} s: "
                f"{m['time_knn'] / exact['time_knn']:.2f}x"
                + (f" ({m['knn_choice']})" if m.get('knn_choice') else ''))
        elif 'knn_brute_force_rows' in m and not approximate:
            parts.append(
                'exact neighbours by construction (verified search, '
                f"{m['knn_brute_force_rows']} rows by brute force)")
        if 'knn_recall' in m:
            parts.append(f"kNN recall@{r['k1']} {m['knn_recall']:.3f}")
        if m.get('memory_estimate_mb'):
            parts.append(f"memory estimated before clustering "
                         f"{_mb(m['memory_estimate_mb'])} (measured "
                         f"{_mb(m['above_start_mb'])} above start)")
        target = TARGETS.get(n) if not approximate else None
        met = None
        target_text = ''
        if approximate and n >= MILLION:
            target_text, met = _million_target(m)
        if target:
            bits = [f"<= {target['seconds']:g} s"]
            met = m['wall'] <= target['seconds']
            if target['memory_mb']:
                bits.append(f"< {_mb(target['memory_mb'])}")
                met = met and m['peak_mb'] < target['memory_mb']
            if target['same_as_exact']:
                bits.append('same clusters as exact kNN')
                if exact is not None:
                    met = met and exact['ari_vs_main'] == 1.0
                elif m.get('knn_method') not in ('pca', 'auto', 'exact'):
                    met = None
            target_text = ', '.join(bits)
        row = dict(stage=stage, figure=figure, comparison='; '.join(parts),
                   target=target_text, met=met)
        row.update(_raw(r, m))
        if exact is not None:
            row['ari_vs_exact'] = exact['ari_vs_main']
            row['same_labels_as_exact'] = exact['same_labels']
            row['exact_wall'] = exact['wall']
            row['exact_cpu'] = exact['cpu']
        rows.append(row)

        for a in r.get('approx', []):
            arow = dict(
                stage=f'approximate kNN N={n:,}: {_knn_name(a["knn"])}',
                figure=(f"{a['wall']:.1f} s wall ({a['cpu']:.1f} s CPU), "
                        f"{_mb(a['peak_mb'])} peak; ARI {a['ari_vs_main']:.4f}"
                        f" vs exact-kNN clusters; load avg "
                        f"{a['loadavg']:.1f}"),
                comparison=(f"exact (verified) kNN: {m['wall']:.1f} s, "
                            f"{_mb(m['peak_mb'])}; approximate "
                            f"{m['wall'] / a['wall']:.2f}x as fast; kNN "
                            f"{a['time_knn']:.1f} s vs {m['time_knn']:.1f} "
                            f"s; recall@{r['k1']} {a['knn_recall']:.3f}"),
                target=(f"recall >= {APPROX_TARGETS['recall']}, ARI >= "
                        f"{APPROX_TARGETS['ari']}"),
                met=bool(a['knn_recall'] >= APPROX_TARGETS['recall'] and
                         a['ari_vs_main'] >= APPROX_TARGETS['ari']))
            arow.update(_raw(r, a))
            arow['ari_vs_exact'] = a['ari_vs_main']
            rows.append(arow)

        ref = r.get('reference')
        if ref and 'skipped' not in ref:
            rows.append(dict(
                stage=f'dense reference N={n:,} (same script)',
                figure=(f"{ref['wall']:.1f} s wall, "
                        f"{_mb(ref['above_start_mb'])} above start"),
                comparison=(f"ours {m['wall']:.1f} s: "
                            f"{ref['wall'] / m['wall']:.1f}x faster; labels "
                            f"ARI {ref['ari']:.4f}; max |d - d_ref| "
                            f"{ref['max_abs_diff']:.1e}"),
                target='', met=None, num=n, wall=ref['wall'],
                above_start_mb=ref['above_start_mb'], ari=ref['ari']))

    # Memory growth on one family: the first one's sizes.
    first = results[0].get('family', 'synthetic') if results else None
    exact_like = [r for r in results if _is_exact(r['main']['knn'])
                  and r.get('family', 'synthetic') == first]
    if len(exact_like) >= 2:
        small = min(exact_like, key=lambda r: r['num'])
        large = max(exact_like, key=lambda r: r['num'])
        if large['num'] > small['num']:
            ratio_n = large['num'] / small['num']
            ratio_mem = (large['main']['above_start_mb'] /
                         max(small['main']['above_start_mb'], 1e-9))
            per = [r['main']['above_start_mb'] * 1024 / r['num']
                   for r in (small, large)]
            rows.append(dict(
                stage='clustering memory growth',
                figure=(f"{per[0]:.1f} KB per sample at N={small['num']:,}, "
                        f"{per[1]:.1f} KB at N={large['num']:,} (above the "
                        'features)'),
                comparison=(f"N x{ratio_n:.1f}: memory x{ratio_mem:.1f} "
                            f"(N*N would be x{ratio_n ** 2:.0f})"),
                target='grows with N*k, not N*N',
                met=bool(ratio_mem <= 2 * ratio_n),
                num_small=small['num'], num_large=large['num'],
                kb_per_sample_small=per[0], kb_per_sample_large=per[1]))
    return rows


def _million_target(m: dict) -> Tuple[str, bool]:
    """The target of the approximate clustering of 1,000,000 features
    and whether the main run ``m`` meets it (its clusters are compared
    with exact ones on a 100,000 sample: ``--approx-at 100000``)."""
    t = APPROX_TARGETS
    text = (f"<= {t['seconds'] / 60:g} min, < {_mb(t['memory_mb'])}, "
            f"recall >= {t['recall']} (ARI >= {t['ari']} at 100,000)")
    met = (m['wall'] <= t['seconds'] and m['peak_mb'] < t['memory_mb']
           and m.get('knn_recall', 0) >= t['recall'])
    return text, bool(met)


def _gb(mb: float) -> str:
    return f'{mb / 1024:.2f} GB'


def _fmt_limited(r: dict) -> str:
    head = (f"N={r['num']:,} D={r['dim']} under {r['limit_resource']} = "
            f"{r['limit_gb']:g} GB: {r['outcome']}")
    if r['outcome'] == 'completed':
        m = r['main']
        return (f"{head} in {m['wall']:.1f} s, peak RSS "
                f"{_mb(m['peak_mb'])}, writable memory "
                f"{_gb(r['vmdata_start_mb'])} at start, "
                f"{_gb(r['vmdata_peak_mb'])} at peak; estimate "
                f"{_mb(m['memory_estimate_mb'])}")
    if 'error' in r:
        return f"{head} after {r.get('seconds', 0):.2f} s: {r['error']}"
    return head


def limit_rows(limited: list, results: list) -> list:
    """Rows of the runs under a memory limit; their labels are compared
    with those of the run without a limit of the same size, if any."""
    digests = {r['num']: r['main'].get('labels_sha1') for r in results}
    rows = []
    target = ('completes with the labels of the run without a limit, or '
              'refuses before clustering with the estimate in its message')
    for r in limited:
        n = r['num']
        stage = (f"re-clustering N={n:,} under a {r['limit_gb']:g} GB "
                 f"memory limit ({r['limit_resource']})")
        raw = dict(num=n, dim=r['dim'], limit_gb=r['limit_gb'],
                   limit_resource=r['limit_resource'],
                   outcome=r['outcome'])
        outcome = r['outcome']
        if outcome == 'completed':
            m = r['main']
            same = digests.get(n)
            same = None if same is None else same == m['labels_sha1']
            figure = (
                f"completed in {m['wall']:.1f} s wall ({m['cpu']:.1f} s "
                f"CPU); peak RSS {_mb(m['peak_mb'])} "
                f"({_mb(m['above_start_mb'])} above the start, features "
                f"{_mb(r['features_mb'])}); writable memory (VmData) "
                f"{_gb(r['vmdata_start_mb'])} at start, "
                f"{_gb(r['vmdata_peak_mb'])} at peak, limit "
                f"{r['limit_gb']:g} GB; load avg {m['loadavg']:.1f}")
            comparison = (
                f"estimate before clustering {_mb(m['memory_estimate_mb'])}"
                f" (measured {_mb(m['above_start_mb'])} RSS, "
                f"{_mb(r['vmdata_peak_mb'] - r['vmdata_start_mb'])} VmData "
                f"above start); labels identical to the run without a "
                f"limit: {'not run' if same is None else same}")
            met = same is not False
            raw.update(_raw(r, m))
            raw.update(vmdata_start_mb=r['vmdata_start_mb'],
                       vmdata_peak_mb=r['vmdata_peak_mb'],
                       same_labels_as_unlimited=same)
        elif outcome == 'refused':
            growth = r['rss_peak_mb'] - r['rss_start_mb']
            figure = (f"refused after {r['seconds']:.2f} s, before "
                      f"clustering (RSS +{growth:.0f} MB): {r['error']}")
            comparison = (f"writable memory at start "
                          f"{_gb(r['vmdata_start_mb'])} (features "
                          f"{_mb(r['features_mb'])})")
            met = growth < 64
            raw.update(seconds=r['seconds'], message=r['error'],
                       rss_growth_mb=growth)
        else:  # out of memory in the middle, or the worker failed
            figure = (f"{outcome} after {r.get('seconds', 0):.1f} s: "
                      f"{r.get('error', '')}")
            comparison = 'the estimate let a clustering start that failed'
            met = False
        rows.append(dict(stage=stage, figure=figure, comparison=comparison,
                         target=target, met=met, **raw))
    return rows


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--num', type=int, nargs='+', default=None,
        help='sizes N (default: 12936 32621 100000)')
    parser.add_argument(
        '--million', action='store_true',
        help=f'also cluster {MILLION:,} features, with the first '
        'approximate search (7.8 GB of features)')
    parser.add_argument(
        '--families',
        nargs='+',
        default=['synthetic'],
        help='feature distributions: synthetic (default), isotropic and '
        '.npz feature files of a real model, each clustered at every size')
    parser.add_argument('--dim', type=int, default=2048)
    parser.add_argument(
        '--ids', type=int, default=None, help='identities (N / 17.2)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--knn', default='auto',
        help="search of the main run: 'auto' (default) or 'pca' (exact "
        "neighbours), 'exact', 'ivf', 'hnsw' or a JSON dict, e.g. "
        '\'{"type": "pca", "dim": 256}\'')
    parser.add_argument(
        '--exact-max', type=int, default=40000,
        help='also cluster with brute-force exact kNN up to this N and '
        'compare the labels')
    parser.add_argument(
        '--approx-knn', default=json.dumps(DEFAULT_APPROX),
        help='approximate searches compared with exact (a JSON list of '
        'dicts or names); the first is used for --million')
    parser.add_argument(
        '--approx-at', type=int, nargs='*', default=[32621],
        help='sizes where the approximate searches also run')
    parser.add_argument(
        '--approx-above', type=int, default=300000,
        help='sizes above this are clustered with the first --approx-knn '
        'search instead of --knn (exact kNN would take too long)')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--eps', type=float, default=0.6)
    parser.add_argument('--min-samples', type=int, default=4)
    parser.add_argument('--k1', type=int, default=30)
    parser.add_argument('--k2', type=int, default=6)
    parser.add_argument(
        '--compare-reference', action='store_true',
        help='also run the dense public-style implementation (N <= '
        f'{REFERENCE_MAX_N}) and compare')
    parser.add_argument(
        '--memory-limit-gb', type=float, nargs='*', default=[],
        help='also cluster the largest --num size under each of these '
        'memory limits (GB of 2**30 bytes), one fresh process each')
    parser.add_argument(
        '--limit-resource', choices=['data', 'as'], default='data',
        help="the rlimit of --memory-limit-gb: 'data' (RLIMIT_DATA, "
        "writable memory, default) or 'as' (RLIMIT_AS, address space, "
        'which torch alone fills beyond 3 GB)')
    parser.add_argument('--json', help='write the table rows here')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for family in args.families:
        if family not in FAMILIES and not osp.isfile(family):
            parser.error(f'--families: {family!r} is neither one of '
                         f'{FAMILIES} nor a feature file')
    if args.knn.lstrip().startswith('{'):
        args.knn = json.loads(args.knn)
    approx = args.approx_knn.strip()
    approx = json.loads(approx) if approx[:1] in '[{' else approx
    args.approx_knn = approx if isinstance(approx, list) else [approx]
    return args


def _specs(args) -> list:
    base = dict(dim=args.dim, ids=args.ids, seed=args.seed, k1=args.k1,
                k2=args.k2, eps=args.eps, min_samples=args.min_samples,
                threads=args.threads)
    sizes = list(args.num or DEFAULT_SIZES)
    if args.million and MILLION not in sizes:
        sizes.append(MILLION)
    rows = {f: _family_rows(f) for f in args.families}
    specs = []
    for family, n in ((f, n) for n in sizes for f in args.families
                      if rows[f] is None or n <= rows[f]):
        # Beyond --approx-above the exact search would take too long.
        knn = args.knn if n <= args.approx_above else args.approx_knn[0]
        specs.append(dict(
            base, num=n, knn=knn, family=family,
            recall=not _is_exact(knn),
            exact=_is_exact(knn) and knn != 'exact' and n <= args.exact_max,
            approx=(args.approx_knn
                    if n in args.approx_at and _is_exact(knn) else []),
            reference=args.compare_reference and n <= REFERENCE_MAX_N))
    return specs


def _family_rows(family: str) -> Optional[int]:
    """Rows of a feature file (a file family clusters the sizes it
    holds); None for a generated family."""
    if family in FAMILIES:
        return None
    from mmreid_rcl.apis import load_features
    return len(load_features(family)['features'])


def _limited_specs(args) -> list:
    """One spec per --memory-limit-gb, at the largest size."""
    if not args.memory_limit_gb:
        return []
    biggest = max(_specs(args), key=lambda s: s['num'])
    return [
        dict(biggest, limit_gb=gb, limit_resource=args.limit_resource)
        for gb in args.memory_limit_gb
    ]


def _run_worker_process(spec: dict, env: dict) -> dict:
    """Run one spec in a fresh process; its result (for a spec with a
    memory limit, also when the process failed)."""
    limited = 'limit_gb' in spec
    with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as f:
        json.dump(spec, f)
        path = f.name
    try:
        proc = subprocess.run(
            [sys.executable, osp.abspath(__file__), '--worker', path],
            env=env,
            stderr=subprocess.PIPE if limited else None,
            text=True)
        if limited:
            sys.stderr.write(proc.stderr)
        if proc.returncode != 0:
            if not limited:
                raise SystemExit(
                    f"the worker for N={spec['num']:,} failed")
            last = (proc.stderr or '').strip().splitlines()[-1:] or ['']
            return dict(
                num=spec['num'], dim=spec['dim'], limit_gb=spec['limit_gb'],
                limit_resource=spec['limit_resource'],
                outcome=f'the process failed (exit code {proc.returncode})',
                error=last[0][-300:])
        with open(path) as f:
            return json.load(f)
    finally:
        os.unlink(path)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        with open(args.worker) as f:
            spec = json.load(f)
        if 'limit_gb' in spec:
            result = run_limited_worker(spec)
        else:
            result = run_worker(spec)
        with open(args.worker, 'w') as f:
            json.dump(result, f)
        return
    env = dict(os.environ)
    env.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    results = []
    for spec in _specs(args):
        result = _run_worker_process(spec, env)
        results.append(result)
        print(_fmt(result), flush=True)
    limited = []
    for spec in _limited_specs(args):
        result = _run_worker_process(spec, env)
        limited.append(result)
        print(_fmt_limited(result), flush=True)
    rows = build_rows(results) + limit_rows(limited, results)
    for row in rows:
        met = {True: 'met', False: 'NOT met', None: '-'}[row['met']]
        print(f"{row['stage']}: {row['figure']} | {row['comparison']} | "
              f"target {row['target'] or '-'}: {met}")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=2)


if __name__ == '__main__':
    main()
