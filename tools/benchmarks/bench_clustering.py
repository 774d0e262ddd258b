"""Benchmark pseudo-label clustering on synthetic re-ID features.

Seeded, L2-normalised features (2048-d by default) imitate a train split
in the middle of training: identities of varying size (about 17 images
each, as in Market-1501), look-alike identities, per-camera shifts, and a
share of hard images far from their identity, so that DBSCAN leaves
outliers and merges some look-alikes.

Each size runs in a fresh subprocess; its peak memory is the VmHWM of
/proc/self/status (which sees numpy, scipy and faiss alike), reset after
the features are generated, so it is the clustering's own peak on top of
the features it is given (reported too).

Examples::

    python tools/benchmarks/bench_clustering.py                  # 12,936
    python tools/benchmarks/bench_clustering.py --num 12936 32621
    python tools/benchmarks/bench_clustering.py --num 100000 --knn pca
    python tools/benchmarks/bench_clustering.py --compare-reference

At 100,000 x 2048 the exact search alone is 4e13 flops (minutes on two
cores); ``--knn pca`` searches 256 principal axes and re-ranks exactly, and
the run reports its recall against exact search on 1,000 queries. The
synthetic features have an effective rank of 256, so there it is exact; on
real features check that recall line.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Optional, Tuple

import numpy as np

IMAGES_PER_ID = 12936 / 751  # Market-1501 train split
NUM_CAMERAS = 6
# Largest N for the dense reference (three N x N float32 matrices).
REFERENCE_MAX_N = 20000

# Scales of the synthetic features' parts (see ``make_features``); chosen
# so that DBSCAN (eps 0.6) finds about 90 % of the identities and leaves
# about 9 % of the images out at Market size.
CFG = dict(
    latent=256,  # effective rank of the features
    family=0.9,  # weight of the component shared by look-alike identities
    camera=0.5,  # per-camera shift shared by all identities
    view=0.6,  # per-(identity, camera) shift, in a 32-d subspace
    view_rank=32,
    noise=1.0,  # per-image variation, in a 128-d subspace
    noise_rank=128,
    iso=0.3,  # isotropic noise over all D dimensions
    hard=2.5)  # noise scale of hard images


def make_features(num: int,
                  dim: int = 2048,
                  num_ids: Optional[int] = None,
                  seed: int = 0,
                  hard_share: float = 0.15,
                  chunk: int = 8192) -> Tuple[np.ndarray, np.ndarray]:
    """Synthetic re-ID features and their true ids.

    An image of identity ``p`` seen by camera ``c`` is, before
    normalisation, ``centre[p] + camera[c] + view[p, c] + s * noise`` in a
    latent space of ``CFG['latent']`` dimensions mapped isometrically into
    D, plus a small isotropic part (CNN features have an effective rank of
    a few hundred, not D). Identities come in families of about 8
    look-alikes whose centres share a component; the view offset and the
    noise live in low-dimensional subspaces, so that nearby images really
    are confusable; ``s`` is 1, or ``CFG['hard']`` for a share
    ``hard_share`` of hard images.

    Args:
        num (int): number of images N.
        dim (int): feature dimension D.
        num_ids (int, optional): identities; default ``N / 17.2``.
        seed (int): seed of every random draw.
        hard_share (float): share of hard images.
        chunk (int): rows generated at once (bounds temporary memory).

    Returns:
        tuple[np.ndarray, np.ndarray]: unit float32 features (N, D) and
        int64 true ids (N,), in a shuffled order.
    """
    rng = np.random.default_rng(seed)
    if num_ids is None:
        num_ids = max(2, int(round(num / IMAGES_PER_ID)))

    def unit(a):
        return a / np.linalg.norm(a, axis=-1, keepdims=True)

    def normal(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    # Identity sizes: log-normal, at least 2, adjusted to sum to N.
    weights = rng.lognormal(0.0, 0.6, num_ids)
    sizes = np.maximum(2, np.floor(weights / weights.sum() * num))
    sizes = sizes.astype(np.int64)
    while sizes.sum() != num:
        diff = int(num - sizes.sum())
        pick = rng.choice(num_ids, min(abs(diff), num_ids), replace=False)
        sizes[pick] += np.sign(diff)
        sizes = np.maximum(sizes, 2)
    ids = rng.permutation(np.repeat(np.arange(num_ids), sizes))
    cams = rng.integers(NUM_CAMERAS, size=num)
    scale = np.where(rng.random(num) < hard_share, CFG['hard'], 1.0)
    scale = scale.astype(np.float32)[:, None]

    # All structure lives in a latent space mapped isometrically into D
    # dimensions, plus a small isotropic part: CNN features have an
    # effective rank of a few hundred, not D.
    latent = CFG['latent']
    num_families = max(1, num_ids // 8)
    family = unit(normal(num_families, latent))
    centre = unit(CFG['family'] * family[rng.integers(
        num_families, size=num_ids)] + unit(normal(num_ids, latent)))
    camera = unit(normal(NUM_CAMERAS, latent))
    basis = unit(normal(CFG['view_rank'] + CFG['noise_rank'], latent))
    view_basis = basis[:CFG['view_rank']]
    noise_basis = basis[CFG['view_rank']:]
    view = normal(num_ids, NUM_CAMERAS, CFG['view_rank'])
    view /= np.linalg.norm(view, axis=-1, keepdims=True)
    embed = np.linalg.qr(normal(dim, latent))[0].T  # (latent, D) orthonormal

    x = np.empty((num, dim), dtype=np.float32)
    for start in range(0, num, chunk):
        sl = slice(start, min(start + chunk, num))
        p, c, m = ids[sl], cams[sl], sl.stop - sl.start
        noise = normal(m, CFG['noise_rank']) @ noise_basis
        noise *= CFG['noise'] / np.sqrt(CFG['noise_rank'])
        rows = (centre[p] + CFG['camera'] * camera[c] +
                CFG['view'] * (view[p, c] @ view_basis) + scale[sl] * noise)
        rows = rows @ embed
        rows += CFG['iso'] / np.sqrt(dim) * normal(m, dim)
        x[sl] = unit(rows)
    return x, ids.astype(np.int64)


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


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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


def _knn_recall(x: np.ndarray, args, num_queries: int = 1000) -> dict:
    """Share of the exact k1 (and 10) nearest neighbours an approximate
    search finds, on a seeded sample of queries."""
    import faiss

    from mmreid_rcl.clustering import faiss_num_threads, knn_search
    _, approx = knn_search(x, args.k1, args.knn, args.threads)
    rng = np.random.default_rng(args.seed + 1)
    queries = np.sort(
        rng.choice(len(x), min(num_queries, len(x)), replace=False))
    with faiss_num_threads(args.threads):
        _, exact = faiss.knn(x[queries], x, args.k1,
                             faiss.METRIC_INNER_PRODUCT)
    approx = approx[queries]

    def recall(k):
        hits = [
            len(np.intersect1d(a[:k], e[:k])) for a, e in zip(approx, exact)
        ]
        return float(np.mean(hits) / k)

    return dict(knn_recall=recall(args.k1), knn_recall10=recall(10))


def run_worker(args) -> dict:
    """One size, in this (fresh) process; returns the measurements."""
    from sklearn.cluster import DBSCAN
    from sklearn.metrics import adjusted_rand_score

    from mmreid_rcl.clustering import (cluster_quality, jaccard_distance,
                                       knn_search, relabel_by_first_member)
    from mmreid_rcl.registry import LABEL_GENERATORS

    t0 = time.perf_counter()
    x, ids = make_features(args.num, args.dim, args.ids, args.seed)
    out = dict(
        num=args.num,
        ids=int(ids.max()) + 1,
        dim=args.dim,
        knn=args.knn,
        k1=args.k1,
        time_generate=time.perf_counter() - t0,
        features_mb=x.nbytes / 2**20,
        loadavg=os.getloadavg()[0])

    gen = LABEL_GENERATORS.build(
        dict(
            type='DBSCANLabelGenerator',
            eps=args.eps,
            min_samples=args.min_samples,
            k1=args.k1,
            k2=args.k2,
            knn=args.knn,
            num_threads=args.threads))
    exact_peak = _reset_peak()
    rss0 = _status_kb('VmRSS')
    cpu0 = _cpu_seconds()
    labels, info = gen(x, return_info=True)
    out.update(info)
    out['cpu_total'] = _cpu_seconds() - cpu0
    out['peak_rss_mb'] = _status_kb('VmHWM') / 1024
    out['peak_over_start_mb'] = (_status_kb('VmHWM') - rss0) / 1024
    out['peak_is_own'] = exact_peak
    out.update({
        f'quality_{k}': v
        for k, v in cluster_quality(labels, ids).items()
    })

    if args.knn != 'exact':
        out.update(_knn_recall(x, args))

    if args.compare_reference:
        if args.num > REFERENCE_MAX_N:
            out['reference'] = f'skipped: N > {REFERENCE_MAX_N}'
            return out
        import faiss
        faiss.omp_set_num_threads(args.threads or os.cpu_count())
        _reset_peak()
        rss0 = _status_kb('VmRSS')
        t0 = time.perf_counter()
        ref, rank = reference_jaccard(x, args.k1, args.k2)
        t1 = time.perf_counter()
        ref_labels = relabel_by_first_member(
            DBSCAN(
                eps=args.eps, min_samples=args.min_samples,
                metric='precomputed', n_jobs=-1).fit_predict(ref))
        t2 = time.perf_counter()
        out['ref_time_jaccard'] = t1 - t0
        out['ref_time_dbscan'] = t2 - t1
        out['ref_time_total'] = t2 - t0
        out['ref_peak_over_start_mb'] = (_status_kb('VmHWM') - rss0) / 1024
        out['ref_ari'] = float(adjusted_rand_score(ref_labels, labels))
        out['ref_same_labels'] = bool((ref_labels == labels).all())
        # The L2 and inner-product searches may order near-ties
        # differently; the distances are compared on the same lists.
        sims, ours_rank = knn_search(x, args.k1, args.knn, args.threads)
        out['ref_knn_rows_differing'] = int(
            (np.sort(rank, axis=1) != np.sort(ours_rank, axis=1)).any(
                axis=1).sum())
        ref_sims = np.concatenate([
            np.einsum('nd,nkd->nk', x[i:i + 512], x[rank[i:i + 512]])
            for i in range(0, len(x), 512)
        ])
        ours = jaccard_distance(
            x, args.k1, args.k2, neighbours=(ref_sims, rank)).tocoo()
        del sims, ours_rank
        out['ref_max_abs_diff'] = float(
            np.abs(ref[ours.row, ours.col] - ours.data).max())
        stored = np.zeros(ref.shape, dtype=bool)
        stored[ours.row, ours.col] = True
        out['ref_min_absent'] = float(ref[~stored].min(initial=1.0))
    return out


def _fmt(r: dict) -> str:
    lines = [
        f"N={r['num']:,} ids={r['ids']:,} D={r['dim']} knn={r['knn']} "
        f"(load avg {r['loadavg']:.1f})",
        f"  time   kNN {r['time_knn']:.2f} s | Jaccard "
        f"{r['time_jaccard']:.2f} s | DBSCAN {r['time_dbscan']:.2f} s | "
        f"total {r['time_total']:.2f} s (CPU {r['cpu_total']:.1f} s)",
        f"  memory peak RSS {r['peak_rss_mb']:.0f} MB, of which "
        f"{r['peak_over_start_mb']:.0f} MB above the start (features "
        f"{r['features_mb']:.0f} MB); distance entries "
        f"{r['distance_nnz']:,}",
        f"  labels {r['num_clusters']} clusters, {r['num_outliers']:,} "
        f"outliers; purity {r['quality_purity']:.3f} NMI "
        f"{r['quality_nmi']:.3f} ARI {r['quality_ari']:.3f} (all "
        f"{r['quality_ari_all']:.3f})",
    ]
    if 'knn_recall' in r:
        lines.append(
            f"  approximate kNN recall vs exact (1000 queries): "
            f"@{r.get('k1', 30)} {r['knn_recall']:.3f}, @10 "
            f"{r['knn_recall10']:.3f}")
    if 'ref_time_total' in r:
        lines.extend((
            f"  dense reference: Jaccard {r['ref_time_jaccard']:.2f} s + "
            f"DBSCAN {r['ref_time_dbscan']:.2f} s = "
            f"{r['ref_time_total']:.2f} s, peak +"
            f"{r['ref_peak_over_start_mb']:.0f} MB; labels ARI "
            f"{r['ref_ari']:.4f} (identical: {r['ref_same_labels']})",
            f"  on the reference's neighbour lists (which differ from ours "
            f"in {r['ref_knn_rows_differing']} rows, near-ties): max "
            f"|d - d_ref| on stored pairs {r['ref_max_abs_diff']:.1e}, "
            f"min d_ref of absent pairs {r['ref_min_absent']:.6f}"))
    elif 'reference' in r:
        lines.append(f"  dense reference {r['reference']}")
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--num', type=int, nargs='+', default=[12936],
        help='sizes N (Market 12936, MSMT17 32621, 100000)')
    parser.add_argument('--dim', type=int, default=2048)
    parser.add_argument(
        '--ids', type=int, default=None, help='identities (N / 17.2)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--knn', default='exact',
        help="'exact', 'pca', 'ivf', 'hnsw' or a JSON dict, e.g. "
        '\'{"type": "pca", "dim": 256}\'')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--eps', type=float, default=0.6)
    parser.add_argument('--min-samples', type=int, default=4)
    parser.add_argument('--k1', type=int, default=30)
    parser.add_argument('--k2', type=int, default=6)
    parser.add_argument(
        '--compare-reference', action='store_true',
        help='also run the dense public-style implementation (N <= '
        f'{REFERENCE_MAX_N}) and compare')
    parser.add_argument('--json', help='also write the results here')
    parser.add_argument('--worker', action='store_true', help='internal')
    args = parser.parse_args(argv)
    if args.knn.lstrip().startswith('{'):
        args.knn = json.loads(args.knn)
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        args.num = args.num[-1]
        print(json.dumps(run_worker(args)))
        return
    results = []
    for num in args.num:
        cmd = [sys.executable, os.path.abspath(__file__), '--worker']
        cmd += sys.argv[1:] if argv is None else list(argv)
        # The worker measures a single size.
        cmd += ['--num', str(num)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            raise SystemExit(f'the worker for N={num} failed')
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(result)
        print(_fmt(result), flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)


if __name__ == '__main__':
    main()
