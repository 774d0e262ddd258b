"""The command-line options the tools share."""
import argparse

import pytest

from mmreid_rcl.utils.cli import (add_cfg_options, add_model_run_options,
                                  add_overwrite, add_ranking_picture_options)


def _parser(*adders):
    parser = argparse.ArgumentParser(prog='tool')
    for add in adders:
        add(parser)
    return parser


def test_defaults_and_values():
    parser = _parser(add_cfg_options, add_overwrite,
                     lambda p: add_model_run_options(p, backend=True),
                     add_ranking_picture_options)
    args = parser.parse_args([])
    assert (args.cfg_options, args.overwrite, args.batch_size,
            args.num_workers, args.device, args.backend, args.metric,
            args.png_colors) == (None, False, 64, 0, 'cpu', 'auto',
                                 'euclidean', None)
    args = parser.parse_args([
        '--cfg-options', 'a.b=2', 'c=x', '--overwrite', '--batch-size', '8',
        '--backend', 'onnx', '--metric', 'cosine', '--png-colors', '64'
    ])
    assert args.cfg_options == {'a.b': 2, 'c': 'x'}
    assert args.overwrite and args.batch_size == 8
    assert args.backend == 'onnx' and args.metric == 'cosine'
    assert args.png_colors == 64


def test_backend_only_when_asked_and_help_texts():
    parser = _parser(add_model_run_options)
    assert not hasattr(parser.parse_args([]), 'backend')
    with pytest.raises(SystemExit):
        parser.parse_args(['--backend', 'onnx'])
    parser = _parser(
        lambda p: add_cfg_options(p, 'CONFIG', 'train_cfg.max_epochs=2'),
        lambda p: add_overwrite(p, 'PNGs of an earlier run'))
    text = parser.format_help()
    assert 'override settings of CONFIG, key=value (e.g.' in text
    assert 'train_cfg.max_epochs=2)' in text
    assert 'replace PNGs of an earlier run' in text
    with pytest.raises(SystemExit):
        _parser(lambda p: add_model_run_options(p, backend=True)).parse_args(
            ['--backend', 'tensorrt'])
