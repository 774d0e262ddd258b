"""Command-line options that several tools share, spelled once."""
import argparse

BACKENDS = ('auto', 'pytorch', 'onnx')


def add_cfg_options(parser: argparse.ArgumentParser,
                    target: str = 'the config',
                    example: str = '') -> None:
    """``--cfg-options key=value ...``: settings of ``target`` overridden
    (merged by :func:`~mmreid_rcl.utils.config_utils.merge_cfg_options`);
    ``example`` is shown in the help."""
    from mmengine.config import DictAction
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help=f'override settings of {target}, key=value' +
        (f' (e.g. {example})' if example else ''))


def add_overwrite(parser: argparse.ArgumentParser,
                  what: str = 'an existing --out') -> None:
    """``--overwrite``: the explicit flag that lets a tool replace
    ``what``, an output of an earlier run."""
    parser.add_argument(
        '--overwrite', action='store_true', help=f'replace {what}')


def add_model_run_options(parser: argparse.ArgumentParser,
                          backend: bool = False) -> None:
    """``--batch-size``, ``--num-workers`` and ``--device`` of a tool that
    runs a model on images, and with ``backend`` ``--backend`` (a
    checkpoint through PyTorch or an exported model through
    onnxruntime)."""
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--num-workers', type=int, default=0)
    parser.add_argument('--device', default='cpu')
    if backend:
        parser.add_argument(
            '--backend',
            choices=BACKENDS,
            default='auto',
            help='pytorch (a checkpoint) or onnx (an exported model, run '
            'with onnxruntime on the CPU); auto: onnx for a .onnx file')


def add_ranking_picture_options(parser: argparse.ArgumentParser) -> None:
    """``--metric`` of a gallery ranking and ``--png-colors`` of its
    pictures."""
    parser.add_argument(
        '--metric', choices=['euclidean', 'cosine'], default='euclidean')
    parser.add_argument(
        '--png-colors',
        type=int,
        metavar='N',
        help='write palette PNGs of N (<= 256) colours, 2-3x smaller')
