"""tools/deployment/export_onnx.py, and extract_features.py / search.py on
the exported model (a tiny ResNet-18 on synthetic images)."""
import contextlib
import importlib.util
import io
import os
import os.path as osp

import numpy as np
import pytest
import torch
from tool_utils import load_tool, tiny_model

from mmreid_rcl.apis import ReIDInferencer, resolve_image_inputs


def need_onnx():
    """Skip without onnx / onnxruntime, except under CI (see
    tests/test_apis/test_onnx.py)."""
    missing = [
        name for name in ('onnx', 'onnxruntime')
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        message = (f'{" and ".join(missing)} not installed (pip install -r '
                   'requirements/optional.txt)')
        if os.environ.get('CI'):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    need_onnx()
    root = tmp_path_factory.mktemp('export')
    config, checkpoint, data_root = tiny_model(root, num_ids=4, seed=5)
    tool = load_tool('deployment/export_onnx.py')
    onnx_file = str(root / 'out' / 'tiny.onnx')
    return dict(
        root=root,
        config=config,
        checkpoint=checkpoint,
        data_root=data_root,
        tool=tool,
        onnx=onnx_file)


@pytest.fixture(scope='module')
def exported(setup):
    """The tool's first run, its printed output kept."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert setup['tool'].main(
            [setup['config'], setup['checkpoint'], '--out',
             setup['onnx']]) == 0
    return dict(setup, printed=buffer.getvalue())


def test_export_prints_metadata_and_parity(exported):
    printed = exported['printed']
    assert f'wrote {exported["onnx"]} (opset 17, dynamic batch axis)' in \
        printed
    assert '  input_size: [64, 32]' in printed
    assert '  channel_order: RGB' in printed
    assert '  mean: [123.675, 116.28, 103.53]' in printed
    assert '  std: [58.395, 57.12, 57.375]' in printed
    assert '  feature_dim: 512' in printed
    line = [s for s in printed.splitlines() if 'max cosine distance' in s]
    assert len(line) == 1 and float(line[0].split()[-1]) < 1e-5
    # Only the .onnx is left in the folder (no temporary file).
    assert os.listdir(osp.dirname(exported['onnx'])) == ['tiny.onnx']


def test_export_refuses_to_overwrite(exported, capsys):
    tool = exported['tool']
    before = osp.getmtime(exported['onnx'])
    args = [exported['config'], exported['checkpoint'], '--out',
            exported['onnx']]
    with pytest.raises(SystemExit,
                       match=r'--out: .*tiny\.onnx already exists; pass '
                       '--overwrite to replace it'):
        tool.main(args)
    assert osp.getmtime(exported['onnx']) == before
    with pytest.raises(SystemExit, match='checkpoint .*nothing.pth.* does '
                       'not exist'):
        tool.main([
            exported['config'],
            str(exported['root'] / 'nothing.pth'), '--out',
            str(exported['root'] / 'x.onnx')
        ])


def test_export_refuses_a_checkpoint_of_another_model(exported, tmp_path):
    other_root = tmp_path / 'other'
    other_root.mkdir()
    torch.save({'state_dict': {'foo.weight': torch.zeros(3)}},
               str(other_root / 'other.pth'))
    with pytest.raises(SystemExit,
                       match='(?s)does not fit the model.*--allow-partial'):
        exported['tool'].main([
            exported['config'],
            str(other_root / 'other.pth'), '--out',
            str(tmp_path / 'other.onnx')
        ])
    assert not (tmp_path / 'other.onnx').exists()


def test_extract_features_and_search_run_the_onnx_model(
        exported, tmp_path, capsys):
    extract = load_tool('extract_features.py')
    folder = osp.join(exported['data_root'], 'bounding_box_test')
    out = str(tmp_path / 'gallery.npz')
    assert extract.main(
        [exported['config'], exported['onnx'], folder, '--out', out,
         '--batch-size', '3']) == 0
    assert '16 features of dim 512' in capsys.readouterr().out
    reference = ReIDInferencer(exported['config'], exported['checkpoint'])
    with np.load(out) as data:
        names = [str(n) for n in data['filenames']]
        assert names == resolve_image_inputs(folder)
        ref = reference.extract(names, progress=False)
        distance = 1.0 - (data['features'].astype(np.float64) * ref).sum(1)
        assert distance.max() < 1e-5
    # --backend pytorch refuses the .onnx file as a checkpoint.
    with pytest.raises(RuntimeError, match=r'tiny\.onnx is unreadable'):
        extract.main([
            exported['config'], exported['onnx'], folder, '--out',
            str(tmp_path / 'x.npz'), '--backend', 'pytorch'
        ])
    with pytest.raises(SystemExit, match="ONNX backend runs on the CPU "
                       r"\(onnxruntime\): device must be 'cpu', got 'cuda'"):
        extract.main([
            exported['config'], exported['onnx'], folder, '--out',
            str(tmp_path / 'y.npz'), '--device', 'cuda'
        ])

    search = load_tool('search.py')
    query = osp.join(exported['data_root'], 'query',
                     sorted(os.listdir(
                         osp.join(exported['data_root'], 'query')))[0])
    assert search.main([
        query, folder, '--config', exported['config'], '--checkpoint',
        exported['onnx'], '--topk', '3', '--gallery-features', out
    ]) == 0
    printed = capsys.readouterr().out
    assert 'top 3 of 16 gallery images' in printed
    assert f'{exported["checkpoint"]}' not in printed  # no mismatch warning
