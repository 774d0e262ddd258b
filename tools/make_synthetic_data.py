"""Generate the synthetic person re-ID data set (Market-1501 layout)."""
import argparse
import sys

from mmreid_rcl.datasets.synthetic import generate_synthetic_reid


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Generate the synthetic person re-ID data set')
    parser.add_argument(
        '--root',
        default='data/synthetic_reid',
        help='output folder (default: data/synthetic_reid)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--num-train-ids', type=int, default=200)
    parser.add_argument('--num-test-ids', type=int, default=100)
    parser.add_argument('--num-cameras', type=int, default=4)
    parser.add_argument('--images-per-id-per-camera', type=int, default=4)
    parser.add_argument('--num-distractors', type=int, default=50)
    parser.add_argument('--height', type=int, default=128)
    parser.add_argument('--width', type=int, default=64)
    parser.add_argument(
        '--overwrite',
        '--force',
        dest='force',
        action='store_true',
        help='regenerate even if current, and replace a folder that is not '
        'a generated data set')
    parser.add_argument(
        '--no-progress', action='store_true', help='do not log the progress')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        meta = generate_synthetic_reid(
            args.root,
            num_train_ids=args.num_train_ids,
            num_test_ids=args.num_test_ids,
            num_cameras=args.num_cameras,
            images_per_id_per_camera=args.images_per_id_per_camera,
            num_distractors=args.num_distractors,
            height=args.height,
            width=args.width,
            seed=args.seed,
            progress=not args.no_progress,
            force=args.force)
    except FileExistsError as exc:
        print(f'error: {exc}; pass --overwrite (or --force) to replace it.',
              file=sys.stderr)
        return 1
    counts = meta['counts']
    print(f'{args.root}: {meta["params"]["num_cameras"]} cameras')
    for split in ('train', 'query', 'gallery'):
        print(f'  {split:<8} {counts[split]["ids"]:>5} ids '
              f'{counts[split]["images"]:>6} images')
    print(f'  ({counts["distractors"]} distractor images in the gallery)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
