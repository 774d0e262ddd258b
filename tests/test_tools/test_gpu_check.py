"""tools/gpu_check.py: its CPU smoke test (--device cpu --tiny), the
configs of the GPU run, and the message without a GPU."""
import importlib.util
import json
import os

import pytest
import torch
from tool_utils import load_tool

from mmreid_rcl.models.backbones import (convert_mobilenetv2_state_dict,
                                         load_mobilenetv2_source)


@pytest.fixture(scope='module')
def tool():
    return load_tool('gpu_check.py')


@pytest.mark.skipif(torch.cuda.is_available(), reason='a GPU is present')
def test_no_cuda_device_exits_with_a_message(tool, tmp_path, capsys):
    assert tool.main([str(tmp_path), '--work-dir', str(tmp_path / 'w')]) \
        == 2
    err = capsys.readouterr().err
    assert 'gpu_check: no CUDA device is available' in err
    assert 'pass --device cpu --tiny for the CPU smoke test' in err
    assert not (tmp_path / 'w').exists()  # nothing written


def test_arguments_are_checked(tool, capsys):
    with pytest.raises(SystemExit):
        tool.parse_args([])
    assert 'DATA_ROOT is required' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.parse_args(['d', '--batch-size', '30'])
    assert 'must be a multiple of --num-instances 4' in \
        capsys.readouterr().err
    args = tool.parse_args(['d'])
    assert (args.iters, args.batch_size, args.amp) == (40, 128, 'bf16')
    args = tool.parse_args(['--tiny'])
    assert (args.iters, args.batch_size, args.num_workers) == (2, 8, 0)


def test_gpu_run_configs(tool, tmp_path):
    """What the GPU run trains: MobileNetV2 at 256x128, bfloat16 AMP."""
    args = tool.parse_args(['data/cuhk03', '--num-workers', '6'])
    for kind in ('cluster_contrast', 'rcl'):
        cfg = tool.build_config(kind, args, 'data/cuhk03',
                                str(tmp_path / kind), 'w.pth')
        assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
        assert cfg.optim_wrapper.dtype == 'bfloat16'
        assert cfg.model.backbone.type == 'MobileNetV2'
        assert cfg.model.backbone.init_cfg.checkpoint == 'w.pth'
        assert cfg.model.type == ('RCL' if kind == 'rcl' else
                                  'UnsupervisedReID')
        for key in ('train_dataloader', 'cluster_dataloader',
                    'val_dataloader', 'test_dataloader'):
            loader = cfg[key]
            assert loader.dataset.data_root == 'data/cuhk03'
            assert loader.dataset.type == 'CUHK03Dataset'
            assert loader.num_workers == 6
            resize = [
                t for t in loader.dataset.pipeline if t['type'] == 'Resize'
            ]
            assert resize[0]['scale'] == (128, 256)
        sampler = cfg.train_dataloader.sampler
        assert (sampler.batch_size, sampler.num_instances,
                sampler.num_iters) == (128, 4, 40)
        assert cfg.train_dataloader.batch_size == 128
        assert cfg.train_cfg.max_epochs == 2
        assert cfg.train_cfg.val_interval == 2
        assert [h['type'] for h in cfg.custom_hooks] == ['ReClusterHook']
    args = tool.parse_args(['data/cuhk03', '--amp', 'off'])
    cfg = tool.build_config('rcl', args, 'd', str(tmp_path / 'x'), None)
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert cfg.model.backbone.init_cfg is None


@pytest.mark.slow
@pytest.mark.shared_data
def test_cpu_tiny_run(tool, tmp_path, mobilenetv2_weights, monkeypatch,
                      capsys):
    if importlib.util.find_spec('onnxruntime') is None and \
            not os.environ.get('CI'):
        pytest.skip('onnxruntime not installed (pip install -r '
                    'requirements/optional.txt)')
    weights = tmp_path / 'mobilenetv2_mmreid.pth'
    torch.save(
        {
            'state_dict':
            convert_mobilenetv2_state_dict(
                load_mobilenetv2_source(str(mobilenetv2_weights)))
        }, weights)
    # The tool hides the GPUs for --device cpu; keep that to this test.
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES',
                       os.environ.get('CUDA_VISIBLE_DEVICES', ''))
    assert tool.main([
        '--device', 'cpu', '--tiny', '--work-dir',
        str(tmp_path / 'check'), '--weights',
        str(weights)
    ]) == 0
    out = capsys.readouterr().out
    assert 'gpu_check: all checks passed' in out
    for line in ('cluster contrast (OptimWrapper', 'RCL (OptimWrapper',
                 'images/s in the step', 'evaluation: mAP',
                 'max cosine distance to PyTorch'):
        assert line in out, line
    (run_dir, ) = (tmp_path / 'check').iterdir()
    summary = json.loads((run_dir / 'summary.json').read_text())
    assert summary['failed'] == []
    for run in summary['runs'].values():
        assert run['step_images_per_s'] > 0
        assert len(run['clusterings']) == 2
        assert all(c['clusters'] >= 2 for c in run['clusterings'])
        assert all(run['checks'].values())
    assert summary['extraction']['parity_cpu'] < 1e-5
    assert summary['extraction']['onnx_cpu_images_per_s'] > 0
