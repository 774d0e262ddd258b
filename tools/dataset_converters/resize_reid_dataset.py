"""Write a smaller copy of a re-ID data set: every image resized, re-encoded.

    python tools/dataset_converters/resize_reid_dataset.py \\
        ../shared/data/cuhk03_labeled data/cuhk03_128x64 --size 128 64

Folder structure and file names are kept, so the copy is read by the same
dataset config with another ``data_root``. At the network's input size the
pipeline's resize becomes the identity. The output folder must be new.
"""
import argparse
import sys
import time

from mmreid_rcl.datasets.resized_copy import write_resized_copy


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Resized, re-encoded copy of a re-ID data set')
    parser.add_argument('src', help='the data set folder')
    parser.add_argument('dst', help='the new folder to write')
    parser.add_argument(
        '--size',
        nargs=2,
        type=int,
        required=True,
        metavar=('HEIGHT', 'WIDTH'),
        help='output image size')
    parser.add_argument(
        '--quality', type=int, default=90, help='JPEG quality (90)')
    parser.add_argument(
        '--folders',
        nargs='+',
        help='only these sub-folders (default: all)')
    parser.add_argument(
        '--threads', type=int, default=4, help='images in flight (4)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        done = write_resized_copy(
            args.src,
            args.dst,
            size=tuple(args.size),
            quality=args.quality,
            folders=args.folders,
            num_threads=args.threads)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        raise SystemExit(f'error: {exc}')
    print(f'{done["images"]} images and {done["other_files"]} other files '
          f'written to {args.dst}: {done["bytes"] / 2**20:.1f} MiB in '
          f'{time.perf_counter() - start:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
