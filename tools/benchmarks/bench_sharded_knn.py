"""Benchmark the kNN search of the re-clustering sharded over two ranks.

Times the search of the ``k`` nearest neighbours of N seeded synthetic
re-ID features (:func:`features`, from ``bench_clustering.py``; 32,621 x
2048 by default, MSMT17's train split) by one process with one thread
against two processes with one thread each (spawned, gloo on the CPU),
each searching half of the query rows among all N
(:func:`~mmreid_rcl.clustering.knn.sharded_knn_search`), the results
gathered to both. Each process builds the features itself; the times
cover the search and the gather only (the sharded time is the slower
rank's, after a barrier), not the start of the processes. The sharded
neighbours are checked against the single process's: similarities within
1e-5 and the same indices, but where the BLAS rounding swapped two
neighbours whose similarities are within 1e-6 (:func:`compare`).

Prints one row with both times and the speed-up; ``--json OUT`` writes
it as ``{stage, figure, comparison, target, met}`` plus the raw numbers
(what ``tools/benchmarks/run_all.py`` tabulates). Other jobs on the
machine lengthen the times, hence the load average in the row.

Examples::

    python tools/benchmarks/bench_sharded_knn.py
    python tools/benchmarks/bench_sharded_knn.py --num 2000 --dim 64
    python tools/benchmarks/bench_sharded_knn.py --knn auto --json s.json
"""
import argparse
import datetime
import json
import os
import tempfile
import time

import numpy as np

# Two processes should take about half the time of one.
TARGET_SPEEDUP = 1.6
# Similarities this close may be swapped by the rounding of the BLAS.
NEAR_TIE = 1e-6


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--num', type=int, default=32621)
    parser.add_argument('--dim', type=int, default=2048)
    parser.add_argument('--k', type=int, default=30)
    parser.add_argument(
        '--knn',
        default='exact',
        help='the search, a name or a JSON dict (default: exact)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', help='write the result row here')
    return parser.parse_args(argv)


def _knn_config(text: str):
    return json.loads(text) if text.lstrip().startswith('{') else text


def features(num: int, dim: int, seed: int) -> np.ndarray:
    """Seeded synthetic re-ID features (N, D), unit float32: those of
    :func:`mmreid_rcl.apis.feature_families.make_features`, whose latent
    space needs D >= 256; a smaller D keeps the first D dimensions of 256,
    normalised again."""
    from mmreid_rcl.apis.feature_families import CFG, make_features
    x, _ = make_features(num, max(dim, CFG['latent']), seed=seed)
    if dim < x.shape[1]:
        x = np.ascontiguousarray(x[:, :dim])
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _worker(rank: int, world_size: int, args: argparse.Namespace,
            out_dir: str) -> None:
    """One rank: build the features, search (sharded when world_size >
    1), save the neighbours (rank 0) and the time."""
    import torch.distributed as dist

    from mmreid_rcl.clustering.knn import sharded_knn_search
    x = features(args.num, args.dim, args.seed)
    if world_size > 1:
        dist.init_process_group(
            'gloo', init_method=f'file://{out_dir}/store', rank=rank,
            world_size=world_size, timeout=datetime.timedelta(hours=2))
        dist.barrier()
    info = {}
    start = time.perf_counter()
    sims, idx = sharded_knn_search(x, args.k, _knn_config(args.knn), 1,
                                   info)
    elapsed = time.perf_counter() - start
    if world_size > 1:
        dist.destroy_process_group()
    tag = f'{out_dir}/w{world_size}_r{rank}'
    if rank == 0:
        np.savez(f'{tag}.npz', sims=sims, idx=idx)
    with open(f'{tag}.json', 'w') as f:
        json.dump(dict(seconds=elapsed, info=info), f)


def timed_run(world_size: int, args: argparse.Namespace,
              out_dir: str) -> dict:
    """Spawn ``world_size`` ranks; their slowest time, rank 0's report and
    neighbours."""
    import torch.multiprocessing as mp
    mp.spawn(_worker, args=(world_size, args, out_dir), nprocs=world_size)
    reports = []
    for rank in range(world_size):
        with open(f'{out_dir}/w{world_size}_r{rank}.json') as f:
            reports.append(json.load(f))
    result = dict(np.load(f'{out_dir}/w{world_size}_r0.npz'))
    result.update(
        seconds=max(r['seconds'] for r in reports), info=reports[0]['info'])
    return result


def compare(single: dict, sharded: dict) -> dict:
    """How the sharded neighbours differ from the single process's.

    The BLAS may round the products of a range of query rows differently
    from those of all rows (by a few 1e-7), which can swap two neighbours
    whose similarities are that close: a difference is a near tie when
    the reference's similarity at that place is within :data:`NEAR_TIE`
    of the next or previous one (the last place: of the sharded one).

    Returns:
        dict: ``equal`` (the indices equal and the similarities within
        1e-5), ``rows_differing`` and ``unexplained`` (differences that
        are no near tie).
    """
    ref_sims, ref_idx = single['sims'], single['idx']
    close = bool(np.allclose(ref_sims, sharded['sims'], atol=1e-5))
    tied = np.zeros(ref_sims.shape, dtype=bool)
    near = np.abs(np.diff(ref_sims, axis=1)) <= NEAR_TIE
    tied[:, 1:] |= near
    tied[:, :-1] |= near
    tied[:, -1] |= np.abs(ref_sims[:, -1] -
                          sharded['sims'][:, -1]) <= NEAR_TIE
    differs = ref_idx != sharded['idx']
    return dict(
        equal=close and not differs.any(),
        close=close,
        rows_differing=int(differs.any(axis=1).sum()),
        unexplained=int((differs & ~tied).sum()))


def build_row(args, single: dict, sharded: dict) -> dict:
    """The result row, with the raw numbers."""
    diff = compare(single, sharded)
    same = diff['close'] and not diff['unexplained']
    if diff['equal']:
        text = 'neighbours equal'
    else:
        rows = diff['rows_differing']
        text = (f'neighbours equal but {rows} row{"s" * (rows != 1)} with '
                'swapped near ties' if same else
                f'neighbours DIFFER ({diff["unexplained"]} not near ties)')
    speedup = single['seconds'] / sharded['seconds']
    load = os.getloadavg()[0]
    return dict(
        stage=f'sharded kNN N={args.num:,} D={args.dim} k={args.k} '
        f'({args.knn})',
        figure=f'2 processes x 1 thread {sharded["seconds"]:.2f} s, '
        f'speed-up {speedup:.2f}x',
        comparison=f'1 process x 1 thread {single["seconds"]:.2f} s; '
        f'{text}; load {load:.1f}',
        target=f'>= {TARGET_SPEEDUP}x, equal neighbours',
        met=bool(same and speedup >= TARGET_SPEEDUP),
        num=args.num,
        dim=args.dim,
        k=args.k,
        knn=args.knn,
        single_s=single['seconds'],
        sharded_s=sharded['seconds'],
        speedup=speedup,
        **diff,
        knn_choice=single['info'].get('knn_choice'),
        load_average=load)


def main(argv=None) -> dict:
    args = parse_args(argv)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    with tempfile.TemporaryDirectory() as out_dir:
        single = timed_run(1, args, out_dir)
        sharded = timed_run(2, args, out_dir)
    row = build_row(args, single, sharded)
    print(f'| {row["stage"]} | {row["figure"]} | {row["comparison"]} | '
          f'{row["target"]} | {"yes" if row["met"] else "no"} |')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump([row], f, indent=2)
    return row


if __name__ == '__main__':
    main()
