"""Draw the training curves of one or several runs into one PNG.

    python tools/plot_logs.py WORK_DIR [--out PNG] [--overwrite]
    python tools/plot_logs.py RUN_A RUN_B --labels a b --out compare.png

Panels: training loss, learning rate, clusters, outliers, pseudo-label ARI
and NMI, mAP and rank-1 per epoch, read from the runs' scalar logs
(``WORK_DIR/<timestamp>/vis_data/scalars.json``, resumed runs included).
An existing PNG is kept unless ``--overwrite`` is given.
"""
import argparse
import os.path as osp
import sys

from mmreid_rcl.utils.cli import add_overwrite
from mmreid_rcl.utils.output_files import check_outputs
from mmreid_rcl.visualization.training_curves import plot_training_curves


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Draw the training curves of runs from their scalar logs')
    parser.add_argument(
        'work_dirs', nargs='+', help='work dir(s) of the run(s)')
    parser.add_argument(
        '--out',
        help='PNG to write; defaults to WORK_DIR/training_curves.png for a '
        'single run (required for several)')
    add_overwrite(parser, 'an existing PNG')
    parser.add_argument(
        '--labels', nargs='+', help='a legend label per work dir')
    parser.add_argument('--title', help='figure title')
    parser.add_argument(
        '--dpi', type=int, default=100, help='resolution (default 100)')
    args = parser.parse_args(argv)
    if args.labels is not None and len(args.labels) != len(args.work_dirs):
        parser.error(f'--labels gives {len(args.labels)} labels for '
                     f'{len(args.work_dirs)} work dirs')
    if args.out is None:
        if len(args.work_dirs) > 1:
            parser.error('--out is required with several work dirs')
        args.out = osp.join(args.work_dirs[0], 'training_curves.png')
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        check_outputs(args.out, args.overwrite)
        out = plot_training_curves(
            args.work_dirs,
            args.out,
            labels=args.labels,
            title=args.title,
            dpi=args.dpi)
    except (OSError, ValueError) as e:
        sys.exit(f'plot_logs: {e}')
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
