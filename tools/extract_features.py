"""Extract L2-normalised features of images with a trained re-ID model.

    python tools/extract_features.py CONFIG CHECKPOINT INPUT --out f.npz
    python tools/extract_features.py CONFIG CHECKPOINT --split gallery \\
        --out gallery.npz

INPUT is an image folder (searched recursively, files sorted), one image,
or a .txt list of images, one a line (relative paths are relative to the
list's folder). ``--split`` reads a split of the config's data set instead
(``test`` = query then gallery) and also stores ``pids``, ``camids`` and
``is_query``. The output is a .npz (``features``, ``filenames`` and the
labels when known) or a .npy (features only, file names in a .txt of the
same name). An existing output is kept unless ``--overwrite`` is given.
CHECKPOINT ``init`` takes the config's initial weights instead (its
``init_cfg``, e.g. the ImageNet backbone the unsupervised recipes start
from). CHECKPOINT may be an ONNX model made by
``tools/deployment/export_onnx.py`` (``--backend onnx``, chosen by
default for a ``.onnx`` file): it runs with onnxruntime on the CPU after
the same test pipeline and normalisation.
"""
import os

# See tools/train.py: sleeping OpenMP threads, set before torch is imported.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import argparse  # noqa: E402
import os.path as osp  # noqa: E402

from mmreid_rcl.apis import build_inferencer  # noqa: E402
from mmreid_rcl.apis import check_feature_output, save_features  # noqa: E402
from mmreid_rcl.utils.cli import add_cfg_options  # noqa: E402
from mmreid_rcl.utils.cli import add_model_run_options  # noqa: E402
from mmreid_rcl.utils.cli import add_overwrite  # noqa: E402


def read_image_list(path):
    """Image paths of a .txt list, one a line; blank lines are skipped."""
    root = osp.dirname(osp.abspath(path))
    with open(path, encoding='utf-8') as f:
        names = [line.strip() for line in f if line.strip()]
    if not names:
        raise SystemExit(f'the image list {path} is empty')
    return [n if osp.isabs(n) else osp.join(root, n) for n in names]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Extract re-ID features of images (L2-normalised)')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        'checkpoint',
        help="checkpoint file, an .onnx model, or 'init' (the config's "
        'initial weights)')
    parser.add_argument(
        'input',
        nargs='?',
        help='image folder, image file or .txt list of images')
    parser.add_argument(
        '--split',
        choices=['train', 'query', 'gallery', 'test'],
        help="a split of the config's data set instead of INPUT (test = "
        'query then gallery); also stores pids, camids and is_query')
    parser.add_argument(
        '--out', required=True, help='output file, .npz or .npy')
    add_overwrite(parser, 'an existing output')
    add_model_run_options(parser, backend=True)
    add_cfg_options(parser)
    args = parser.parse_args(argv)
    if (args.input is None) == (args.split is None):
        parser.error('give exactly one of INPUT and --split')
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        check_feature_output(args.out, args.overwrite)
    except (OSError, ValueError) as e:  # exists, a folder, bad extension
        raise SystemExit(str(e))
    initial = args.checkpoint == 'init'
    if not initial and not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint {args.checkpoint} does not exist '
                         "('init' takes the config's initial weights)")
    try:
        inferencer = build_inferencer(
            args.config,
            None if initial else args.checkpoint,
            backend=args.backend,
            device=args.device,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            cfg_options=args.cfg_options)
    except (ImportError, ValueError) as e:  # no onnxruntime, bad settings
        raise SystemExit(str(e))
    labels = {}
    if args.split is not None:
        samples = inferencer.load_split(args.split)
        inputs = samples['filenames']
        labels = dict(
            pids=samples['pids'],
            camids=samples['camids'],
            is_query=samples['is_query'])
    elif args.input.lower().endswith('.txt') and osp.isfile(args.input):
        inputs = read_image_list(args.input)
    else:
        inputs = args.input
    print(f'extracting features of {args.split or args.input}')
    features, filenames = inferencer.extract(inputs, return_filenames=True)
    if args.out.lower().endswith('.npy') and labels:
        print('note: a .npy holds the features only; pids, camids and '
              'is_query need a .npz output')
        labels = {}
    written = save_features(
        args.out,
        features,
        filenames,
        config=args.config,
        checkpoint=args.checkpoint,
        overwrite=args.overwrite,
        **labels)
    print(f'{features.shape[0]} features of dim {features.shape[1]} written '
          f'to {", ".join(written)}')
    return 0


if __name__ == '__main__':
    main()
