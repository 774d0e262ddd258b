"""Choose DBSCAN's eps on labelled data before clustering unlabelled data.

    python tools/analysis/sweep_eps.py CONFIG CHECKPOINT
        [--split train] [--id-subset-part labelled|unlabelled|all]
        [--generator-config OTHER_CONFIG] [--values 0.3 0.35 ... 0.7]
        [--min-samples N] [--camera-penalties 0 0.05 0.1 ...]
        [--criterion ari_all|ari|nmi|purity]
        [--device cpu] [--batch-size 64] [--out table.md [--overwrite]]
        [--cfg-options k=v ...]

A warm-started run (cluster contrast from a supervised model) clusters
features that are tighter than ImageNet ones, so the recipe's eps may merge
identities. This tool picks eps where no label of the unlabelled data is
needed: it extracts, with CHECKPOINT, the features of a split whose ids are
known (typically the labelled half the model was trained on), clusters them
once per eps with the label generator and scores each clustering against
the true ids (:func:`mmreid_rcl.clustering.diagnostics.cluster_quality`).
It prints a markdown table (eps, clusters, outliers, purity, NMI, ARI of the
clustered samples, ARI over all samples, the share of a person's
cross-camera image pairs put in one cluster, seconds) and the eps that
scores best by ``--criterion``, ties going to the smaller eps. The default,
``ari_all``, counts each outlier as a cluster of its own, so neither merging
identities (eps too large) nor discarding images (eps too small) pays.

Images: the ``--split`` of the data set of CONFIG's ``test_dataloader``
(see :func:`mmreid_rcl.apis.inferencer.load_split_samples`), read through
its test pipeline. For the train split, the identities kept are those of
``train_dataloader.dataset.id_subset`` (see
:mod:`mmreid_rcl.datasets.id_subset`); ``--id-subset-part labelled`` or
``unlabelled`` keeps that split of the ids but serves the other part,
``all`` keeps every id.

Label generator (the first that applies):

1. the ReClusterHook of ``--generator-config`` (e.g. the semi-supervised
   config that will be trained with the chosen eps);
2. the ReClusterHook in CONFIG's ``custom_hooks``;
3. the ReClusterHook's default, ``dict(type='DBSCANLabelGenerator')``.

A supervised config (``cluster_dataloader = None``, no ReClusterHook) thus
takes its generator from ``--generator-config`` or the defaults. The
generator's ``eps`` is replaced by each swept value and ``--min-samples``,
when given, replaces its ``min_samples``. ``--camera-penalties`` sweeps
eps once for each ``camera_penalty`` of the generator (camera-aware
neighbours, the images' cameras from the data set) and chooses the best
pair. An existing ``--out`` is kept unless ``--overwrite`` is given.

Example (the supervised model of the labelled half L, the generator of
the semi-supervised run on U)::

    python tools/analysis/sweep_eps.py \\
        configs/supervised/supervised_mobilenetv2_cpu_cuhk03.py \\
        work_dirs/supervised_mobilenetv2_cpu_cuhk03/epoch_40.pth \\
        --generator-config \\
        configs/semi/cluster_contrast_mobilenetv2_cpu_cuhk03_semi.py \\
        --id-subset-part labelled

The camera-aware recipe's settings (eps and camera_penalty together)::

    python tools/analysis/sweep_eps.py \\
        configs/supervised/supervised_mobilenetv2_cpu_cuhk03.py \\
        work_dirs/supervised_mobilenetv2_cpu_cuhk03/epoch_40.pth \\
        --generator-config \\
        configs/semi/cluster_contrast_mobilenetv2_cpu_cuhk03_semi.py \\
        --id-subset-part labelled --camera-penalties 0 0.05 0.1 0.15 0.2
"""
import argparse
import copy
import os
import os.path as osp
import sys
from typing import List, Optional, Tuple

DEFAULT_VALUES = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
SPLITS = ('train', 'query', 'gallery', 'test')
PARTS = ('labelled', 'unlabelled', 'all')
# (row key, column title, format) of the table after the eps column.
COLUMNS = (
    ('num_clusters', 'clusters', 'd'),
    ('num_outliers', 'outliers', 'd'),
    ('purity', 'purity', '.3f'),
    ('nmi', 'NMI', '.3f'),
    ('ari', 'ARI', '.3f'),
    ('ari_all', 'ARI all', '.3f'),
    ('cross_camera_recall', 'cross-cam recall', '.3f'),
    ('time', 'time (s)', '.1f'),
)


def parse_args(argv=None):
    from mmreid_rcl.clustering.diagnostics import SWEEP_CRITERIA
    from mmreid_rcl.utils.cli import add_cfg_options, add_overwrite
    parser = argparse.ArgumentParser(
        description="Sweep DBSCAN's eps on data of known identities")
    parser.add_argument('config', help='config of the model')
    parser.add_argument('checkpoint', help='checkpoint of the model')
    parser.add_argument(
        '--split',
        choices=SPLITS,
        default='train',
        help='split of the data set to cluster (default train)')
    parser.add_argument(
        '--id-subset-part',
        choices=PARTS,
        help='train split only: serve this part of the ids of '
        'train_dataloader.dataset.id_subset (all: every id); default: '
        'that setting as it is')
    parser.add_argument(
        '--generator-config',
        help='take the label generator of the ReClusterHook of this config '
        "(default: CONFIG's, else DBSCANLabelGenerator's defaults)")
    parser.add_argument(
        '--values',
        type=float,
        nargs='+',
        default=list(DEFAULT_VALUES),
        help='eps values to try (default 0.3 0.35 ... 0.7)')
    parser.add_argument(
        '--min-samples', type=int, help="replace the generator's min_samples")
    parser.add_argument(
        '--camera-penalties',
        type=float,
        nargs='+',
        help="sweep eps for each of these camera_penalty values of the "
        'generator (camera-aware neighbours; default: its own)')
    parser.add_argument(
        '--criterion',
        choices=SWEEP_CRITERIA,
        default='ari_all',
        help='figure to maximise (default ari_all: ARI over all images, '
        'each outlier a cluster of its own)')
    parser.add_argument('--device', default='cpu', help='torch device')
    parser.add_argument(
        '--batch-size', type=int, default=64, help='images per forward pass')
    parser.add_argument('--out', help='also write the table to this file')
    add_overwrite(parser)
    add_cfg_options(parser, 'CONFIG')
    args = parser.parse_args(argv)
    if args.min_samples is not None and args.min_samples < 1:
        parser.error(f'--min-samples must be >= 1, got {args.min_samples}')
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    if args.overwrite and not args.out:
        parser.error('--overwrite needs --out')
    return args


def load_config(path: str, what: str):
    """Read a config file; a missing file ends the tool."""
    from mmengine.config import Config
    if not osp.isfile(path):
        raise SystemExit(f'{what} {path} does not exist')
    return Config.fromfile(path)


def split_config(cfg, config_path: str, split: str,
                 part: Optional[str]) -> Tuple[object, Optional[dict]]:
    """A copy of ``cfg`` whose test data set serves the requested ids.

    :func:`~mmreid_rcl.apis.inferencer.load_split_samples` reads the data
    set of ``test_dataloader`` (or ``val_dataloader``); for the train split
    it is given the ``id_subset`` of ``train_dataloader.dataset``, its
    ``part`` replaced by ``part`` (``'all'``: no subset).

    Returns:
        tuple: the config copy and the ``id_subset`` applied (or None).
    """
    train = (cfg.get('train_dataloader') or {}).get('dataset') or {}
    id_subset = train.get('id_subset')
    if split != 'train':
        if part not in (None, 'all'):
            raise SystemExit(
                f'--id-subset-part {part}: an id subset exists for the '
                f'train split only, got --split {split}')
        id_subset = None
    elif part == 'all':
        id_subset = None
    elif part is not None:
        if not id_subset:
            raise SystemExit(
                f'--id-subset-part {part}: {config_path} sets no '
                'train_dataloader.dataset.id_subset (e.g. '
                "dict(fraction=0.5, seed=0, part='labelled')) to take the "
                'part of; use --id-subset-part all for every id')
        id_subset = dict(copy.deepcopy(id_subset), part=part)
    cfg = copy.deepcopy(cfg)
    for key in ('test_dataloader', 'val_dataloader'):
        dataset = (cfg.get(key) or {}).get('dataset')
        if isinstance(dataset, dict):
            dataset.pop('id_subset', None)
            if id_subset is not None:
                dataset['id_subset'] = id_subset
    return cfg, id_subset


def generator_settings(cfg, config_path: str,
                       generator_config: Optional[str],
                       min_samples: Optional[int]) -> Tuple[dict, str]:
    """The label generator config to sweep and where it came from."""
    from mmreid_rcl.engine.hooks import ReClusterHook, label_generator_cfg
    if generator_config:
        source = generator_config
        try:
            generator = label_generator_cfg(
                load_config(generator_config, '--generator-config'))
        except ValueError as e:
            raise SystemExit(f'--generator-config {generator_config}: {e}')
        if generator is None:
            raise SystemExit(
                f'--generator-config {generator_config} has no '
                'ReClusterHook in custom_hooks: no label generator to take')
    else:
        try:
            generator = label_generator_cfg(cfg)
        except ValueError as e:
            raise SystemExit(f'{config_path}: {e}')
        source = config_path
        if generator is None:
            # The hook's own default generator.
            generator = label_generator_cfg(
                dict(custom_hooks=[dict(type=ReClusterHook.__name__)]))
            source = 'the defaults (no ReClusterHook in the config; see ' \
                '--generator-config)'
    if min_samples is not None:
        generator['min_samples'] = min_samples
    return generator, source


def format_table(rows: List[dict], key: str = 'eps') -> str:
    """The sweep as a markdown table, one line per row; a
    ``camera_penalty`` column first when the rows have one, the columns of
    :data:`COLUMNS` the rows have after ``key``."""
    keys = (['camera_penalty'] if 'camera_penalty' in rows[0] else []) + \
        [key]
    columns = [c for c in COLUMNS if c[0] in rows[0]]
    head = keys + [title for _, title, _ in columns]
    lines = [
        '| ' + ' | '.join(head) + ' |',
        '|' + '|'.join(' ---: ' for _ in head) + '|'
    ]
    for row in rows:
        cells = [f'{row[k]:g}' for k in keys] + [
            format(row[name], fmt) for name, _, fmt in columns
        ]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    # See tools/train.py: sleeping OpenMP threads; set before torch, faiss
    # and scikit-learn are imported (below, not at the top of the file).
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    from mmreid_rcl.utils.run_setup import make_projects_importable
    make_projects_importable()
    args = parse_args(argv)
    from mmreid_rcl.utils.output_files import check_outputs
    if args.out:
        try:
            check_outputs(args.out, args.overwrite)
        except OSError as e:
            raise SystemExit(f'--out: {e}')
    from mmengine.registry import init_default_scope

    from mmreid_rcl.apis import ReIDInferencer
    from mmreid_rcl.apis.inferencer import load_split_samples
    from mmreid_rcl.clustering.diagnostics import (best_sweep_row,
                                                   build_sweep_generators,
                                                   sweep_label_generator)
    from mmreid_rcl.utils import register_all_modules
    from mmreid_rcl.utils.config_utils import merge_cfg_options

    cfg = load_config(args.config, 'config')
    try:
        merge_cfg_options(cfg, args.cfg_options)
    except ValueError as e:
        raise SystemExit(str(e))
    register_all_modules(init_default_scope=False)
    init_default_scope(cfg.get('default_scope', 'mmreid_rcl'))
    generator, source = generator_settings(cfg, args.config,
                                           args.generator_config,
                                           args.min_samples)
    penalties = args.camera_penalties or [None]
    generators = [
        generator if p is None else dict(generator, camera_penalty=p)
        for p in penalties
    ]
    try:  # refuse a bad value before the extraction
        for settings in generators:
            build_sweep_generators(settings, args.values)
    except ValueError as e:
        raise SystemExit(f'label generator from {source}: {e}')
    split_cfg, id_subset = split_config(cfg, args.config, args.split,
                                        args.id_subset_part)
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint {args.checkpoint} does not exist')
    samples = load_split_samples(split_cfg, args.split)
    true_ids = samples['pids']
    if len(true_ids) == 0 or (true_ids < 0).all():
        raise SystemExit(f'the {args.split} split of {args.config} has no '
                         'true identities to score the clustering against')
    subset = f', id_subset {id_subset}' if id_subset else ''
    print(f'{samples["dataset_name"]} {args.split}{subset}: '
          f'{len(true_ids)} images of {len(set(true_ids.tolist()))} ids')
    print(f'label generator from {source}: {generator}')

    inferencer = ReIDInferencer(
        cfg, args.checkpoint, device=args.device, batch_size=args.batch_size)
    features = inferencer.extract(samples['filenames'])
    rows = []
    try:
        for penalty, settings in zip(penalties, generators):
            part = sweep_label_generator(
                features, true_ids, settings, args.values,
                cameras=samples['camids'])
            for row in part:
                if penalty is not None:
                    row['camera_penalty'] = penalty
            rows += part
    except ValueError as e:
        raise SystemExit(f'label generator from {source}: {e}')
    best = best_sweep_row(rows, args.criterion)
    table = format_table(rows)
    also = (f', camera_penalty {best["camera_penalty"]:g}'
            if penalties != [None] else '')
    chosen = (f'chosen eps: {best["eps"]:g}{also} ({args.criterion} '
              f'{best[args.criterion]:.3f}; ties go to the smaller eps)')
    print(table)
    print(chosen)
    if args.out:
        folder = osp.dirname(osp.abspath(args.out))
        os.makedirs(folder, exist_ok=True)
        with open(args.out, 'w', encoding='utf-8') as f:
            f.write(f'{args.config}, {args.checkpoint}, {args.split} split'
                    f'{subset}, {len(true_ids)} images; label generator '
                    f'from {source}: {generator}\n\n{table}\n\n{chosen}\n')
        print(f'wrote {args.out}')
    return best


if __name__ == '__main__':
    try:
        main()
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f'sweep_eps: {e}')
