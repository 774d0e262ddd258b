"""Compare InfoMap and DBSCAN pseudo labels on the same features.

    python projects/infomap_clustering/tools/compare_clustering.py \
        FEATURES.npz [--infomap k=15 min_similarity=0.5 ...] [--repeat 3]

FEATURES.npz holds ``features`` (N, D) and ``pids`` (N, ), e.g. the train
split written by ``tools/visualize_clusters.py CONFIG CHECKPOINT
--features FEATURES.npz``. Prints a markdown table: clusters, outliers,
ARI and NMI against the true ids (outliers left out, as in training's
logs), the ARI with every outlier a cluster of its own, and the
clustering time (best of ``--repeat``), both methods with the same kNN
search (``--knn``, exact by default).
"""
import argparse
import os
import os.path as osp
import time

import numpy as np

DBSCAN_DEFAULT = dict(
    type='DBSCANLabelGenerator', eps=0.6, min_samples=4, k1=30, k2=6)
INFOMAP_DEFAULT = dict(
    type='InfomapLabelGenerator', k=15, min_similarity=0.5, min_size=4)


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_settings(pairs, base: dict) -> dict:
    """``['k=10', 'min_size=3']`` merged into a copy of ``base``."""
    cfg = dict(base)
    for pair in pairs or []:
        if '=' not in pair:
            raise SystemExit(f'expected key=value, got {pair!r}')
        key, value = pair.split('=', 1)
        cfg[key] = _value(value)
    return cfg


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Compare InfoMap and DBSCAN pseudo labels')
    parser.add_argument('features', help='.npz with `features` and `pids`')
    parser.add_argument(
        '--infomap',
        nargs='*',
        metavar='KEY=VALUE',
        action='append',
        help='InfomapLabelGenerator settings (default k=15 '
        'min_similarity=0.5 min_size=4); repeat the option to compare '
        'several settings')
    parser.add_argument(
        '--dbscan',
        nargs='*',
        metavar='KEY=VALUE',
        help='DBSCANLabelGenerator settings (default eps=0.6 '
        'min_samples=4 k1=30 k2=6)')
    parser.add_argument(
        '--repeat', type=int, default=1, help='runs per method, best time')
    parser.add_argument(
        '--knn',
        default='exact',
        help='kNN search of both methods: exact (default), pca, ivf, hnsw')
    parser.add_argument(
        '--threads', type=int, help='threads of the kNN search')
    return parser.parse_args(argv)


def describe(cfg: dict) -> str:
    return ', '.join(f'{k}={v}' for k, v in cfg.items()
                     if k not in ('type', 'knn', 'num_threads'))


def main(argv=None):
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    from mmreid_rcl.utils.run_setup import make_projects_importable
    make_projects_importable()
    import projects.infomap_clustering.infomap_clustering  # noqa: F401
    from mmreid_rcl.clustering import cluster_quality
    from mmreid_rcl.registry import LABEL_GENERATORS

    args = parse_args(argv)
    if not osp.isfile(args.features):
        raise SystemExit(f'feature file {args.features} does not exist')
    with np.load(args.features) as data:
        if 'features' not in data or 'pids' not in data:
            raise SystemExit(f'{args.features} must hold `features` and '
                             f'`pids`, found {sorted(data.files)}')
        feats = np.asarray(data['features'], dtype=np.float32)
        pids = np.asarray(data['pids'])
    configs = [parse_settings(args.dbscan, DBSCAN_DEFAULT)]
    configs += [
        parse_settings(pairs, INFOMAP_DEFAULT)
        for pairs in (args.infomap or [[]])
    ]
    print(f'{len(feats)} images of {len(np.unique(pids))} identities, '
          f'{feats.shape[1]}-d features from {args.features}\n')
    rows = []
    for cfg in configs:
        cfg = dict(cfg, knn=args.knn)
        if args.threads is not None:
            cfg = dict(cfg, num_threads=args.threads)
        gen = LABEL_GENERATORS.build(cfg)
        best = float('inf')
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            labels = gen(feats)
            best = min(best, time.perf_counter() - t0)
        q = cluster_quality(labels, pids)
        rows.append(
            f'| {cfg["type"].replace("LabelGenerator", "")} '
            f'({describe(cfg)}) | {q["num_clusters"]} | {q["num_outliers"]}'
            f' | {q["ari"]:.3f} | {q["nmi"]:.3f} | {q["purity"]:.3f} '
            f'| {q["ari_all"]:.3f} | {best:.1f} |')
    print('| method | clusters | outliers | ARI | NMI | purity | '
          'ARI (outliers as singletons) | time (s) |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- |')
    print('\n'.join(rows))


if __name__ == '__main__':
    main()
