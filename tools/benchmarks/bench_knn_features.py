"""Time the exact kNN searches of the re-clustering on a feature file.

    python tools/extract_features.py CONFIG CHECKPOINT --split train \\
        --out feats.npz        # or CHECKPOINT init: the config's start
    python tools/benchmarks/bench_knn_features.py feats.npz [--k 30]

Brute force (``'exact'``), the verified projection (``'pca'``) and
``'auto'`` search the features' k nearest neighbours, each ``--repeats``
times (the best time counts); the neighbours of ``'pca'`` and ``'auto'``
are checked against brute force, and ``'auto'``'s choice is printed.
Then one ``'auto'`` searcher searches the features ``--epochs`` times, as
the re-clustering of every epoch does (it probes at the first search and
reuses its choice after): its mean time per search against the best exact
method is what training pays.
"""
import argparse
import time

import numpy as np

METHODS = ('exact', 'pca', 'auto')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('features', help='.npz of extract_features.py')
    parser.add_argument('--k', type=int, default=30)
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument(
        '--epochs',
        type=int,
        default=10,
        help='searches of one auto searcher (default: its reprobe_every)')
    args = parser.parse_args(argv)
    if args.k < 1 or args.repeats < 1 or args.epochs < 1:
        parser.error('--k, --repeats and --epochs must be >= 1')
    return args


def main(argv=None):
    args = parse_args(argv)
    from mmreid_rcl.apis import load_features
    from mmreid_rcl.clustering import build_knn, knn_search
    try:
        x = np.ascontiguousarray(
            load_features(args.features)['features'], dtype=np.float32)
    except (KeyError, ValueError, OSError) as e:
        raise SystemExit(str(e))
    best, found, choice = {}, {}, ''
    for _ in range(args.repeats):
        for method in METHODS:
            info = {}
            start = time.perf_counter()
            _, idx = knn_search(x, args.k, method, None, info=info)
            best[method] = min(best.get(method, np.inf),
                               time.perf_counter() - start)
            found[method] = idx
            choice = info.get('knn_choice', choice)
    print(f'{args.features}: {x.shape[0]} x {x.shape[1]}, k={args.k}')
    for method in METHODS:
        same = (found[method] == found['exact']).all(1).mean()
        print(f'  {method:5s} {best[method]:.3f} s, rows with the brute-force '
              f'neighbours: {same:.2%}')
    fastest = min(best['exact'], best['pca'])
    print(f'  {choice}; auto / best exact method: '
          f'{best["auto"] / fastest:.2f}x')
    searcher, times = build_knn('auto'), []
    for _ in range(args.epochs):
        start = time.perf_counter()
        searcher.search(x, args.k)
        times.append(time.perf_counter() - start)
    print(f'  one auto searcher, {args.epochs} searches (as over epochs): '
          f'first {times[0]:.3f} s, mean {np.mean(times):.3f} s; mean / '
          f'best exact method: {np.mean(times) / fastest:.2f}x')
    return 0


if __name__ == '__main__':
    main()
