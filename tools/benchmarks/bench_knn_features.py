"""Time the exact kNN searches of the re-clustering on a feature family.

    python tools/extract_features.py CONFIG CHECKPOINT --split train \\
        --out feats.npz        # or CHECKPOINT init: the config's start
    python tools/benchmarks/bench_knn_features.py feats.npz [--k 30]
    python tools/benchmarks/bench_knn_features.py isotropic --num 12936

The features: a file of ``extract_features.py`` (its first ``--num``
rows, all by default), or a generated family of
``mmreid_rcl/apis/feature_families.py`` (``synthetic``, ``isotropic``;
``--num`` rows of ``--dim`` dimensions). Brute force (``'exact'``), the
verified projection (``'pca'``) and ``'auto'`` search the features' k
nearest neighbours ``--repeats`` times, in turns (one search of each per
round, so that a slow spell of the machine hits all three); the best and
the median time of each are printed, ``auto``'s against the faster of the
other two. The neighbours of ``'pca'`` and ``'auto'`` are checked against
brute force, and ``'auto'``'s choice is printed. Then one ``'auto'``
searcher searches the features ``--epochs`` times, as the re-clustering
of every epoch does (it probes at the first search and reuses its choice
after): its mean time per search against the best exact method is what
training pays. ``--methods exact auto`` leaves out the projection where
it is known to be the slower one; ``--json`` writes the figures.
"""
import argparse
import json
import time

import numpy as np

METHODS = ('exact', 'pca', 'auto')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        'features',
        help='.npz of extract_features.py, or a generated family '
        '(synthetic, isotropic)')
    parser.add_argument(
        '--num',
        type=int,
        help='rows (default: all rows of a file, 12936 of a family)')
    parser.add_argument(
        '--dim', type=int, default=2048, help='dimensions of a family')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--k', type=int, default=30)
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument(
        '--epochs',
        type=int,
        default=10,
        help='searches of one auto searcher (default: its reprobe_every)')
    parser.add_argument(
        '--methods',
        nargs='+',
        choices=METHODS,
        default=list(METHODS),
        help='searches to time (default: all three; auto is compared with '
        'the fastest of the others)')
    parser.add_argument('--json', help='write the figures here')
    args = parser.parse_args(argv)
    if args.k < 1 or args.repeats < 1 or args.epochs < 1:
        parser.error('--k, --repeats and --epochs must be >= 1')
    if args.num is not None and args.num < 2:
        parser.error('--num must be >= 2')
    if 'auto' not in args.methods or 'exact' not in args.methods:
        parser.error('--methods must hold exact and auto')
    return args


def load(args) -> np.ndarray:
    """The features of ``args.features`` as float32 rows."""
    from mmreid_rcl.apis import load_features
    from mmreid_rcl.apis.feature_families import FAMILIES, load_family
    if args.features in FAMILIES:
        num = args.num or 12936
        return load_family(args.features, num, args.dim, None,
                           args.seed)[0]
    if not args.features.endswith(('.npz', '.npy')):
        families = ', '.join(FAMILIES)
        raise SystemExit(f'{args.features!r} is neither a feature file '
                         f'(.npz or .npy) nor a family ({families})')
    try:
        x = load_features(args.features)['features']
    except (KeyError, ValueError, OSError) as e:
        raise SystemExit(str(e))
    if args.num is not None and args.num > len(x):
        raise SystemExit(f'{args.features} holds {len(x)} rows, fewer than '
                         f'--num {args.num}')
    return np.ascontiguousarray(x[:args.num], dtype=np.float32)


def main(argv=None):
    args = parse_args(argv)
    from mmreid_rcl.clustering import build_knn, knn_search
    x = load(args)
    methods = [m for m in METHODS if m in args.methods]
    times, found, choice = {m: [] for m in methods}, {}, ''
    for _ in range(args.repeats):
        for method in methods:
            info = {}
            start = time.perf_counter()
            _, idx = knn_search(x, args.k, method, None, info=info)
            times[method].append(time.perf_counter() - start)
            found[method] = idx
            choice = info.get('knn_choice', choice)
    best = {m: min(t) for m, t in times.items()}
    median = {m: float(np.median(t)) for m, t in times.items()}
    print(f'{args.features}: {x.shape[0]} x {x.shape[1]}, k={args.k}, '
          f'{args.repeats} rounds')
    same = {}
    for method in methods:
        same[method] = float((found[method] == found['exact']).all(1).mean())
        print(f'  {method:5s} best {best[method]:.3f} s, median '
              f'{median[method]:.3f} s, rows with the brute-force '
              f'neighbours: {same[method]:.2%}')
    fastest = min(best[m] for m in methods if m != 'auto')
    fastest_median = min(median[m] for m in methods if m != 'auto')
    print(f'  {choice}; auto / best exact method: '
          f'{best["auto"] / fastest:.2f}x (medians: '
          f'{median["auto"] / fastest_median:.2f}x)')
    searcher, epochs = build_knn('auto'), []
    for _ in range(args.epochs):
        start = time.perf_counter()
        searcher.search(x, args.k)
        epochs.append(time.perf_counter() - start)
    print(f'  one auto searcher, {args.epochs} searches (as over epochs): '
          f'first {epochs[0]:.3f} s, mean {np.mean(epochs):.3f} s; mean / '
          f'best exact method: {np.mean(epochs) / fastest:.2f}x')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(
                dict(
                    features=args.features,
                    num=int(x.shape[0]),
                    dim=int(x.shape[1]),
                    k=args.k,
                    times=times,
                    best=best,
                    median=median,
                    same_as_brute_force=same,
                    choice=choice,
                    auto_over_best=best['auto'] / fastest,
                    auto_over_best_median=median['auto'] / fastest_median,
                    epochs=epochs,
                    epochs_mean_over_best=float(np.mean(epochs)) / fastest),
                f,
                indent=1)
    return 0


if __name__ == '__main__':
    main()
