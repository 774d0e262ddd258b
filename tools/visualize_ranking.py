"""Pictures of the ranked gallery of chosen queries of a config's test split.

    python tools/visualize_ranking.py CONFIG CHECKPOINT --out-dir DIR \\
        [--worst N | --random N --seed S] [--topk K] [--features test.npz]

Every query of the config's query split ranks its gallery split by the
distance of L2-normalised features, under the re-ID protocol used by the
evaluation: gallery images showing the query's identity *under the
query's camera* are left out. ``--worst N`` shows the N queries with the
lowest average precision (AP, as in mAP), ``--random N --seed S`` a fixed
random sample (the default is ``--random 8 --seed 0``). Each row is a
query (with its AP), then its top-k: green frame = same identity, red =
another identity, distance underneath. PNGs of ``--per-image`` queries
are written to DIR as ``ranking_<worst|random>_<page>.png``; existing
ones are kept unless ``--overwrite`` is given.

``--features`` takes the output of
``tools/extract_features.py CONFIG CHECKPOINT --split test --out F.npz``
instead of running the model.
"""
import os

# See tools/train.py: sleeping OpenMP threads, set before torch is imported.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import argparse  # noqa: E402
import os.path as osp  # noqa: E402

import numpy as np  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from mmreid_rcl.apis import (ReIDInferencer, load_features,  # noqa: E402
                             load_split_samples)
from mmreid_rcl.evaluation import compute_distance  # noqa: E402
from mmreid_rcl.evaluation import per_query_metrics  # noqa: E402
from mmreid_rcl.evaluation import protocol_exclusion  # noqa: E402
from mmreid_rcl.evaluation import rank_distances  # noqa: E402
from mmreid_rcl.utils import register_all_modules  # noqa: E402
from mmreid_rcl.utils.cli import add_cfg_options  # noqa: E402
from mmreid_rcl.utils.cli import add_model_run_options  # noqa: E402
from mmreid_rcl.utils.cli import add_overwrite  # noqa: E402
from mmreid_rcl.utils.cli import add_ranking_picture_options  # noqa: E402
from mmreid_rcl.utils.output_files import check_outputs  # noqa: E402
from mmreid_rcl.visualization import draw_ranking, save_ranking  # noqa: E402

PROTOCOL_NOTE = ("gallery images of the query's identity and camera are "
                 'excluded (re-ID protocol)')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Draw the top-k gallery of chosen queries of the '
        f"config's test split; {PROTOCOL_NOTE}, as in evaluation.")
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        'checkpoint',
        help='checkpoint file (not read when --features is given)')
    parser.add_argument(
        '--out-dir', required=True, help='folder the PNGs go to')
    add_overwrite(parser, 'PNGs of an earlier run in --out-dir')
    parser.add_argument(
        '--features',
        help='features of the test split from tools/extract_features.py '
        '--split test (.npz) instead of running the model')
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        '--worst',
        type=int,
        metavar='N',
        help='the N queries with the lowest AP')
    group.add_argument(
        '--random',
        type=int,
        metavar='N',
        help='N queries drawn at random (default 8)')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of --random')
    parser.add_argument('--topk', type=int, default=10)
    parser.add_argument(
        '--per-image', type=int, default=8, help='queries per PNG')
    add_ranking_picture_options(parser)
    add_model_run_options(parser)
    add_cfg_options(parser)
    args = parser.parse_args(argv)
    for name in ('worst', 'random', 'topk', 'per_image'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got '
                         f'{value}')
    if args.worst is None and args.random is None:
        args.random = 8
    return args


def select_queries(ap, worst=None, random=None, seed=0):
    """Indices of the queries to draw.

    Args:
        ap (np.ndarray): Per-query AP, NaN for queries without a match
            (never selected).
        worst (int, optional): Take the ``worst`` lowest-AP queries, lowest
            first, ties by query index.
        random (int, optional): Take ``random`` queries drawn without
            replacement by ``np.random.default_rng(seed)``, in index order.
        seed (int): Seed of the random draw.

    Returns:
        np.ndarray: Query indices (at most the number of valid queries).
    """
    ap = np.asarray(ap, dtype=np.float64)
    valid = np.flatnonzero(~np.isnan(ap))
    if (worst is None) == (random is None):
        raise ValueError('give exactly one of worst and random')
    if worst is not None:
        order = np.argsort(ap[valid], kind='stable')
        return valid[order[:worst]]
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(valid), size=min(random, len(valid)),
                        replace=False)
    return valid[np.sort(picked)]


def split_features(args, cfg, samples):
    """Features of the test split: from --features or from the model."""
    if args.features is None:
        if not osp.isfile(args.checkpoint):
            raise SystemExit(f'checkpoint {args.checkpoint} does not exist')
        inferencer = ReIDInferencer(
            cfg,
            args.checkpoint,
            device=args.device,
            batch_size=args.batch_size,
            num_workers=args.num_workers)
        print(f'extracting features of {len(samples["filenames"])} query '
              'and gallery images')
        return inferencer.extract(samples['filenames'])
    data = load_features(args.features)
    if data['filenames'] != samples['filenames']:
        raise SystemExit(
            f'{args.features} does not hold the features of the test split '
            f'of {args.config} ({len(data["filenames"])} files against '
            f'{len(samples["filenames"])}, or another order); make it with '
            'tools/extract_features.py CONFIG CHECKPOINT --split test')
    return data['features']


def picture_paths(out_dir, mode, num_queries, per_image):
    """The PNGs of ``num_queries`` queries, ``per_image`` a picture."""
    pages = -(-num_queries // per_image)
    return [
        osp.join(out_dir, f'ranking_{mode}_{page:02d}.png')
        for page in range(pages)
    ]


def main(argv=None):
    args = parse_args(argv)
    mode = 'worst' if args.worst is not None else 'random'
    try:  # at most worst / random queries: check their pictures first
        check_outputs(
            picture_paths(args.out_dir, mode, args.worst or args.random,
                          args.per_image), args.overwrite)
    except OSError as e:
        raise SystemExit(f'--out-dir: {e}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    register_all_modules(init_default_scope=False)
    init_default_scope(cfg.get('default_scope', 'mmreid_rcl'))
    samples = load_split_samples(cfg, 'test')
    features = split_features(args, cfg, samples)

    is_query = samples['is_query']
    names = np.asarray(samples['filenames'])
    q_pids, g_pids = samples['pids'][is_query], samples['pids'][~is_query]
    q_cams, g_cams = samples['camids'][is_query], samples['camids'][~is_query]
    q_names, g_names = names[is_query], names[~is_query]
    distmat = compute_distance(
        features[is_query], features[~is_query], metric=args.metric)
    per_query = per_query_metrics(distmat, q_pids, g_pids, q_cams, g_cams)
    ap = per_query['AP']
    mean_ap = float(np.nanmean(ap))
    print(f'{len(q_names)} queries, {len(g_names)} gallery images, '
          f'mAP {100 * mean_ap:.2f}% ({int(np.isnan(ap).sum())} queries '
          'without a match skipped)')

    selected = select_queries(ap, args.worst, args.random, args.seed)
    exclude = protocol_exclusion(q_pids[selected], g_pids, q_cams[selected],
                                 g_cams)
    indices, distances = rank_distances(distmat[selected], args.topk,
                                        exclude)
    first = per_query['first_match_rank'][selected]
    what = (f'{len(selected)} lowest-AP queries' if mode == 'worst' else
            f'{len(selected)} random queries (seed {args.seed})')
    print(f'{"query":>6} {"AP %":>6} {"first match":>11}  file')
    for row, q in enumerate(selected):
        print(f'{q:>6} {100 * ap[q]:>6.1f} {first[row]:>11}  {q_names[q]}')

    os.makedirs(args.out_dir, exist_ok=True)
    paths = picture_paths(args.out_dir, mode, len(selected), args.per_image)
    for page, start in enumerate(range(0, len(selected), args.per_image)):
        rows = range(start, min(start + args.per_image, len(selected)))
        title = (f'{samples["dataset_name"]}: {what}, top-{indices.shape[1]} '
                 f'of {len(g_names)} gallery images by {args.metric} '
                 f'distance (mAP {100 * mean_ap:.1f}%); {PROTOCOL_NOTE}. '
                 'Green: same identity, red: another identity.')
        gallery_images, matches = [], []
        for row in rows:
            valid = indices[row] >= 0
            gallery_images.append([
                g_names[i] if ok else None
                for i, ok in zip(indices[row], valid)
            ])
            matches.append([
                bool(g_pids[i] == q_pids[selected[row]]) if ok else None
                for i, ok in zip(indices[row], valid)
            ])
        picture = draw_ranking(
            [q_names[selected[row]] for row in rows],
            gallery_images,
            distances=[distances[row] for row in rows],
            matches=matches,
            query_labels=[
                f'query {selected[row]}\nAP {100 * ap[selected[row]]:.1f}%'
                f'\n1st match #{first[row]}' for row in rows
            ],
            title=title)
        path = paths[page]
        save_ranking(path, picture, colors=args.png_colors)
        print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    main()
