"""Picture the clustering of the train split by a trained model.

    python tools/visualize_clusters.py CONFIG CHECKPOINT --out clusters.png
        [--overwrite] [--features feats.npz] [--method tsne|pca] [--num N]
        [--show-true-ids] [--cfg-options k=v ...]

Features of the train split are extracted with the config's
``cluster_dataloader`` (the same features the re-clustering uses),
clustered with the label generator of the config's ``ReClusterHook``,
embedded in the plane (t-SNE or PCA on a subsample of ``--num`` images,
whole clusters by default) and drawn coloured by pseudo label, outliers in
grey; ``--show-true-ids`` adds a panel coloured by true identity.
``--features`` caches the features: read when the file exists, written
otherwise. An existing ``--out`` is kept unless ``--overwrite`` is given.
"""
import argparse
import os
import os.path as osp
import sys
import time

import numpy as np
from mmengine.config import Config


def parse_args(argv=None):
    from mmreid_rcl.utils.cli import add_cfg_options, add_overwrite
    parser = argparse.ArgumentParser(
        description='Draw the clustering of the train split by a model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', required=True, help='PNG to write')
    add_overwrite(parser)
    parser.add_argument(
        '--features',
        help='.npz of train features (`features` (N, D), optionally `pids`):'
        ' read when it exists, else extracted and written there')
    parser.add_argument(
        '--method',
        choices=['tsne', 'pca'],
        default='tsne',
        help='2-D embedding (default tsne)')
    parser.add_argument(
        '--num',
        type=int,
        default=2000,
        help='images drawn (clustering always uses all); default 2000, '
        '0 for all')
    parser.add_argument(
        '--subsample',
        choices=['cluster', 'random'],
        default='cluster',
        help='draw whole clusters (default) or random images')
    parser.add_argument(
        '--show-true-ids',
        action='store_true',
        help='add a panel coloured by true identity')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--title', help='figure title')
    add_cfg_options(
        parser, example='custom_hooks.0.label_generator.eps=0.5')
    args = parser.parse_args(argv)
    if args.num < 0:
        parser.error(f'--num must be >= 0, got {args.num}')
    return args


def extract_train_features(cfg: Config, checkpoint: str) -> dict:
    """Features and true ids of the config's cluster_dataloader split."""
    from mmreid_rcl.apis.dataset_features import (build_checked_model,
                                                  build_cluster_dataloader,
                                                  extract_dataset_features)
    from mmreid_rcl.engine.runner.state_dict_check import \
        CheckpointMismatchError

    try:
        loader = build_cluster_dataloader(cfg)
    except ValueError as e:
        raise SystemExit(str(e))
    try:
        model = build_checked_model(cfg, checkpoint)
    except CheckpointMismatchError as e:
        raise SystemExit(str(e))
    dataset = loader.dataset
    print(f'extracting features of {len(dataset)} images')
    feats = extract_dataset_features(model, loader, len(dataset))
    out = dict(features=feats.numpy().astype(np.float32))
    if hasattr(dataset, 'get_person_ids'):
        out['pids'] = np.asarray(dataset.get_person_ids(), dtype=np.int64)
    return out


def load_feature_file(path: str) -> dict:
    with np.load(path, allow_pickle=False) as data:
        if 'features' not in data:
            raise SystemExit(f'{path} has no `features` array (found '
                             f'{sorted(data.files)})')
        out = dict(features=np.asarray(data['features'], dtype=np.float32))
        if 'pids' in data:
            out['pids'] = np.asarray(data['pids'], dtype=np.int64)
    if out['features'].ndim != 2:
        raise SystemExit(f'{path}: `features` must be (N, D), got shape '
                         f'{out["features"].shape}')
    if 'pids' in out and out['pids'].shape != out['features'].shape[:1]:
        raise SystemExit(f'{path}: {len(out["pids"])} pids for '
                         f'{len(out["features"])} features')
    return out


def main(argv=None):
    # See tools/train.py: sleeping OpenMP threads; set before torch, faiss
    # and scikit-learn are imported (below, not at the top of the file).
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    from mmreid_rcl.utils.output_files import check_outputs
    from mmreid_rcl.utils.run_setup import make_projects_importable
    from mmreid_rcl.visualization.clusters import (embed_2d, plot_clusters,
                                                   select_subset,
                                                   summarize_labels)
    args = parse_args(argv)
    try:
        check_outputs(args.out, args.overwrite)
    except OSError as e:
        raise SystemExit(f'--out: {e}')
    if not osp.isfile(args.config):
        raise SystemExit(f'config {args.config} does not exist')
    make_projects_importable()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    from mmreid_rcl.engine.hooks import build_label_generator
    from mmreid_rcl.utils import register_all_modules
    register_all_modules()
    try:
        generator = build_label_generator(cfg, source=args.config)
    except ValueError as e:
        raise SystemExit(str(e))

    if args.features and osp.isfile(args.features):
        data = load_feature_file(args.features)
        print(f'features read from {args.features}')
    else:
        if not osp.isfile(args.checkpoint):
            raise SystemExit(f'checkpoint {args.checkpoint} does not exist')
        data = extract_train_features(cfg, args.checkpoint)
        if args.features:
            os.makedirs(
                osp.dirname(osp.abspath(args.features)), exist_ok=True)
            np.savez(
                args.features,
                config=np.array(args.config),
                checkpoint=np.array(args.checkpoint),
                **data)
            print(f'features written to {args.features}')
    true_ids = data.get('pids')
    if args.show_true_ids and (true_ids is None or (true_ids < 0).all()):
        raise SystemExit('--show-true-ids: the data set (or the feature '
                         'file) has no true identities')

    t0 = time.perf_counter()
    labels = generator(data['features'])
    print(f'{generator!r}: {summarize_labels(labels)} '
          f'({time.perf_counter() - t0:.1f} s)')
    if true_ids is not None and (true_ids >= 0).any():
        from mmreid_rcl.clustering import cluster_quality
        q = cluster_quality(labels, true_ids)
        print(f'against the true ids: ARI {q["ari"]:.3f}, NMI '
              f'{q["nmi"]:.3f}, purity {q["purity"]:.3f}')

    num = len(labels) if args.num == 0 else args.num
    keep = select_subset(labels, num, by=args.subsample, seed=args.seed)
    t0 = time.perf_counter()
    xy = embed_2d(data['features'][keep], args.method, seed=args.seed)
    print(f'{args.method} of {len(keep)} images: '
          f'{time.perf_counter() - t0:.1f} s')
    title = args.title
    if title is None:
        name = osp.splitext(osp.basename(args.config))[0]
        title = (f'{name}: {summarize_labels(labels)} '
                 f'({args.method.upper() if args.method == "pca" else "t-SNE"}'
                 f' of {len(keep)} images)')
    out = plot_clusters(
        xy,
        labels[keep],
        args.out,
        true_ids=true_ids[keep] if args.show_true_ids else None,
        title=title,
        seed=args.seed)
    print(f'wrote {out}')


if __name__ == '__main__':
    try:
        main()
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f'visualize_clusters: {e}')
