"""Find the gallery images nearest to a query image.

    python tools/search.py QUERY_IMAGE GALLERY_DIR --config C \\
        --checkpoint K [--topk 10] [--out result.png [--overwrite]] \\
        [--gallery-features gallery.npz] [--id-pattern REGEX]

Prints the ranked list (rank, distance, file) of the gallery folder's
images (searched recursively) by the distance of L2-normalised features,
and with ``--out`` draws a PNG: the query, then its top-k (an existing
file is kept unless ``--overwrite`` is given). ``--gallery-
features`` reuses the output of ``tools/extract_features.py CONFIG
CHECKPOINT GALLERY_DIR --out gallery.npz`` instead of running the model on
the gallery. Frames are grey unless ``--id-pattern`` (a regex whose first
group is the identity, searched in the file name) tells identities: then
green = same identity as the query, red = another. ``--checkpoint`` may be
an ONNX model made by ``tools/deployment/export_onnx.py`` (run with
onnxruntime on the CPU; ``--backend onnx``, the default for a ``.onnx``
file).
"""
import os

# See tools/train.py: sleeping OpenMP threads, set before torch is imported.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import argparse  # noqa: E402
import os.path as osp  # noqa: E402
import re  # noqa: E402

from mmreid_rcl.apis import resolve_image_inputs  # noqa: E402
from mmreid_rcl.apis import build_inferencer, load_features  # noqa: E402
from mmreid_rcl.utils.cli import add_model_run_options  # noqa: E402
from mmreid_rcl.utils.cli import add_overwrite  # noqa: E402
from mmreid_rcl.utils.cli import add_ranking_picture_options  # noqa: E402
from mmreid_rcl.utils.output_files import check_outputs  # noqa: E402
from mmreid_rcl.visualization import draw_ranking, save_ranking  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Rank the images of a gallery folder for a query image')
    parser.add_argument('query', help='query image file')
    parser.add_argument('gallery', help='gallery image folder')
    parser.add_argument('--config', required=True, help='config file path')
    parser.add_argument(
        '--checkpoint',
        required=True,
        help='checkpoint file, or an .onnx model')
    parser.add_argument('--topk', type=int, default=10)
    parser.add_argument('--out', help='PNG of the query and its top-k')
    add_overwrite(parser)
    parser.add_argument(
        '--gallery-features',
        help='features of GALLERY_DIR from tools/extract_features.py')
    parser.add_argument(
        '--id-pattern',
        help='regex whose first group, searched in a file name, is the '
        r"identity (e.g. '^(\d+)_' for Market-style names): colours the "
        'frames green (same identity) / red')
    add_ranking_picture_options(parser)
    add_model_run_options(parser, backend=True)
    args = parser.parse_args(argv)
    if args.topk < 1:
        parser.error(f'--topk must be >= 1, got {args.topk}')
    if not osp.isfile(args.query):
        parser.error(f'query image {args.query} does not exist (a file is '
                     'expected)')
    if not osp.isdir(args.gallery):
        parser.error(f'gallery folder {args.gallery} does not exist')
    return args


def identity_of(path, pattern):
    """The identity matched by ``pattern`` in the file name, or None."""
    if pattern is None:
        return None
    found = pattern.search(osp.basename(path))
    return found.group(1) if found and found.groups() else None


def gallery_features(args, inferencer):
    """Gallery features and files: from --gallery-features or the model."""
    if args.gallery_features is None:
        print(f'extracting features of the gallery {args.gallery}')
        return inferencer.extract(args.gallery, return_filenames=True)
    data = load_features(args.gallery_features)
    files = resolve_image_inputs(args.gallery)
    if data['filenames'] != files:
        raise SystemExit(
            f'{args.gallery_features} does not hold the features of the '
            f'images of {args.gallery} ({len(data["filenames"] or [])} files '
            f'against {len(files)}, or other names); make it with '
            'tools/extract_features.py CONFIG CHECKPOINT GALLERY_DIR --out '
            'gallery.npz')
    if data.get('checkpoint') and data['checkpoint'] != args.checkpoint:
        print(f'warning: {args.gallery_features} was made with '
              f'{data["checkpoint"]}, not {args.checkpoint}')
    return data['features'], data['filenames']


def main(argv=None):
    args = parse_args(argv)
    pattern = re.compile(args.id_pattern) if args.id_pattern else None
    if args.out is not None and not args.out.lower().endswith('.png'):
        raise SystemExit(f'--out must be a .png file, got {args.out}')
    if args.out is not None:
        try:
            check_outputs(args.out, args.overwrite)
        except OSError as e:
            raise SystemExit(f'--out: {e}')
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint {args.checkpoint} does not exist')
    try:
        inferencer = build_inferencer(
            args.config,
            args.checkpoint,
            backend=args.backend,
            device=args.device,
            batch_size=args.batch_size,
            num_workers=args.num_workers)
    except (ImportError, ValueError) as e:  # no onnxruntime, bad settings
        raise SystemExit(str(e))
    g_feats, g_names = gallery_features(args, inferencer)
    q_feats = inferencer.extract(args.query)
    indices, distances = inferencer.rank(q_feats, g_feats, args.topk,
                                         args.metric)
    indices, distances = indices[0], distances[0]

    query_id = identity_of(args.query, pattern)
    matches = []
    print(f'query {args.query}: top {len(indices)} of {len(g_names)} gallery '
          f'images by {args.metric} distance')
    print(f'{"rank":>4}  {"distance":>8}  file')
    for rank, (idx, dist) in enumerate(zip(indices, distances), 1):
        gallery_id = identity_of(g_names[idx], pattern)
        match = None if query_id is None or gallery_id is None else (
            gallery_id == query_id)
        matches.append(match)
        mark = {None: '', True: '  (same id)', False: ''}[match]
        print(f'{rank:>4}  {dist:>8.4f}  {g_names[idx]}{mark}')

    if args.out is not None:
        title = (f'{osp.basename(args.query)}: top-{len(indices)} of '
                 f'{len(g_names)} images of {args.gallery} by {args.metric} '
                 'distance')
        if pattern is not None:
            title += '. Green: same identity, red: another identity.'
        picture = draw_ranking([args.query], [[g_names[i] for i in indices]],
                               distances=[distances],
                               matches=[matches],
                               title=title)
        save_ranking(args.out, picture, colors=args.png_colors)
        print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    main()
