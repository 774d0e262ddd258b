"""Export a re-ID model (backbone, neck, L2 normalisation) to ONNX.

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT --out m.onnx \\
        [--overwrite] [--opset 17]

The ONNX model takes ``(N, 3, H, W)`` float32 images, resized by the
config's test pipeline and normalised by its data preprocessor, with a
dynamic batch axis, and returns ``(N, D)`` L2-normalised features. The input
size, channel order, mean and std are written into the model's
``metadata_props`` and printed. Run it with
``tools/extract_features.py CONFIG m.onnx INPUT --out f.npz`` or
``tools/search.py ... --checkpoint m.onnx``.
"""
import os

# See tools/train.py: sleeping OpenMP threads, set before torch is imported.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import argparse  # noqa: E402
import json  # noqa: E402

from mmreid_rcl.apis.onnx_export import DEFAULT_OPSET  # noqa: E402
from mmreid_rcl.apis.onnx_export import export_onnx  # noqa: E402
from mmreid_rcl.engine.runner.state_dict_check import \
    CheckpointMismatchError  # noqa: E402
from mmreid_rcl.utils.cli import add_cfg_options  # noqa: E402
from mmreid_rcl.utils.cli import add_overwrite  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export a re-ID model to ONNX (features, L2-normalised)')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', required=True, help='the .onnx file')
    add_overwrite(parser)
    parser.add_argument(
        '--opset',
        type=int,
        default=DEFAULT_OPSET,
        help=f'ONNX opset (default {DEFAULT_OPSET})')
    parser.add_argument(
        '--allow-partial',
        action='store_true',
        help='export even when the checkpoint does not fit the model')
    parser.add_argument(
        '--no-verify',
        action='store_true',
        help='skip the onnxruntime run against PyTorch on random inputs')
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        info = export_onnx(
            args.config,
            args.checkpoint,
            args.out,
            opset=args.opset,
            overwrite=args.overwrite,
            allow_partial=args.allow_partial,
            cfg_options=args.cfg_options,
            verify=not args.no_verify)
    except (FileExistsError, IsADirectoryError) as err:
        raise SystemExit(f'--out: {err}')
    except (OSError, ValueError, ImportError) as err:
        raise SystemExit(str(err))
    except CheckpointMismatchError as err:
        raise SystemExit(f'{err}\nPass --allow-partial to export anyway.')
    print(f'wrote {info["out"]} (opset {args.opset}, dynamic batch axis)')
    print('metadata_props:')
    for key, value in info['metadata'].items():
        if key != 'test_pipeline':
            print(f'  {key}: {json.loads(value)}')
    distance = info['max_cosine_distance']
    if distance is not None:
        print('onnxruntime against PyTorch, 3 random inputs: max cosine '
              f'distance {distance:.2e}')
    return 0


if __name__ == '__main__':
    main()
