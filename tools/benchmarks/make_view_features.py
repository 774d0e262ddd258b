"""Write features of real images in several views, at given sizes, for
the re-clustering benchmarks on a real feature distribution.

The images of the given folders (sorted) go through the model in view 0
(the image), view 1 (mirrored), then seeded random crops (see
:mod:`mmreid_rcl.apis.feature_views`) until the largest ``--num`` rows;
each size is written as ``<out-dir>/views_<num>.npz``, the first ``num``
rows (so a smaller size holds the same rows as the start of a larger
one). E.g. the CUHK03 images here (7,239 train, 200 query and 738
gallery images: 8,177, in 1.6 views at 12,936 rows and 4 at 32,621)
through the supervised checkpoint of the semi-supervised protocol::

    python tools/benchmarks/make_view_features.py \\
        configs/supervised/supervised_mobilenetv2_cpu_cuhk03.py \\
        work_dirs/ablation/cuhk03_semi/supervised_seed0/epoch_40.pth \\
        --images data/cuhk03_labeled/bounding_box_train \\
        data/cuhk03_labeled/query data/cuhk03_labeled/bounding_box_test \\
        --num 12936 32621 --out-dir work_dirs/features

then ``bench_clustering.py --features-file work_dirs/features/views_
12936.npz`` (and the same for 32,621).
"""
import argparse
import os.path as osp
import sys

from mmreid_rcl.apis import (build_inferencer, resolve_image_inputs,
                             save_features)
from mmreid_rcl.apis.feature_views import extract_view_features
from mmreid_rcl.utils.cli import (add_cfg_options, add_model_run_options,
                                  add_overwrite)
from mmreid_rcl.utils.output_files import check_outputs


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        'checkpoint', help="checkpoint file, an .onnx model, or 'init'")
    parser.add_argument(
        '--images', nargs='+', required=True, help='image folders')
    parser.add_argument(
        '--num', type=int, nargs='+', required=True, help='rows per file')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--seed', type=int, default=0)
    add_overwrite(parser, 'existing views_<num>.npz files')
    add_model_run_options(parser, backend=True)
    add_cfg_options(parser)
    args = parser.parse_args(argv)
    if min(args.num) < 1:
        parser.error(f'--num must be >= 1, got {args.num}')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    outs = {n: osp.join(args.out_dir, f'views_{n}.npz') for n in args.num}
    check_outputs(list(outs.values()), args.overwrite)
    files = [f for folder in args.images
             for f in resolve_image_inputs(folder)]
    checkpoint = None if args.checkpoint == 'init' else args.checkpoint
    inferencer = build_inferencer(
        args.config, checkpoint, args.backend, device=args.device,
        batch_size=args.batch_size, num_workers=args.num_workers,
        cfg_options=args.cfg_options)
    feats, names = extract_view_features(
        lambda images: inferencer.extract(images, progress=False), files,
        max(args.num), seed=args.seed)
    for n, path in outs.items():
        save_features(path, feats[:n], names[:n], config=args.config,
                      checkpoint=args.checkpoint, overwrite=args.overwrite)
        print(f'{n} rows of {len(files)} images in views written to {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
