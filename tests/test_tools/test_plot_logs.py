"""tools/plot_logs.py: one PNG from a run's scalar logs, clear errors."""
import importlib.util
import json
from pathlib import Path

import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / 'tools' / 'plot_logs.py'


@pytest.fixture(scope='module')
def plot_logs():
    spec = importlib.util.spec_from_file_location('plot_logs', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(work_dir, stamp, records):
    path = work_dir / stamp / 'vis_data'
    path.mkdir(parents=True)
    with open(path / 'scalars.json', 'w') as f:
        for rec in records:
            f.write(json.dumps(rec) + '\n')


def _run(work_dir):
    """A run of two epochs of 4 iterations, resumed after the first."""
    _write(work_dir, '20260101_000000', [
        {'val_init/reid/mAP': 2.0, 'val_init/reid/rank1': 1.0, 'step': 0},
        {'cluster/clusters': 9.0, 'cluster/outliers': 30.0,
         'cluster/ari': 0.1, 'cluster/nmi': 0.6, 'step': 0},
        {'loss': 3.0, 'lr': 1e-3, 'epoch': 1, 'iter': 2, 'step': 2},
        {'loss': 2.0, 'lr': 1e-3, 'epoch': 1, 'iter': 4, 'step': 4},
        {'reid/mAP': 4.0, 'reid/rank1': 2.0, 'step': 1},
    ])
    _write(work_dir, '20260101_010000', [
        {'cluster/clusters': 11.0, 'cluster/outliers': 20.0,
         'cluster/ari': 0.2, 'cluster/nmi': 0.7, 'step': 1},
        {'loss': 1.5, 'lr': 1e-4, 'epoch': 2, 'iter': 6, 'step': 6},
        {'loss': 1.0, 'lr': 1e-4, 'epoch': 2, 'iter': 8, 'step': 8},
        {'reid/mAP': 6.0, 'reid/rank1': 3.0, 'step': 2},
    ])
    return work_dir


def test_default_output_in_the_work_dir(plot_logs, tmp_path, capsys):
    run = _run(tmp_path / 'run')
    plot_logs.main([str(run), '--dpi', '40'])
    out = run / 'training_curves.png'
    assert f'wrote {out}' in capsys.readouterr().out
    with Image.open(out) as img:
        assert img.size == (520, 288)  # 13 x 7.2 inches at 40 dpi


def test_several_runs_with_labels(plot_logs, tmp_path):
    a, b = _run(tmp_path / 'a'), _run(tmp_path / 'b')
    out = tmp_path / 'figs' / 'cmp.png'
    plot_logs.main([str(a), str(b), '--labels', 'base', 'new', '--out',
                    str(out)])
    with Image.open(out) as img:
        assert img.size == (1300, 720)


def test_errors(plot_logs, tmp_path, capsys):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(SystemExit, match='empty holds no scalar logs'):
        plot_logs.main([str(tmp_path / 'empty')])
    with pytest.raises(SystemExit, match='nowhere does not exist'):
        plot_logs.main([str(tmp_path / 'nowhere')])
    assert not (tmp_path / 'empty' / 'training_curves.png').exists()
    run = _run(tmp_path / 'run')
    with pytest.raises(SystemExit):
        plot_logs.main([str(run), str(run)])
    assert '--out is required' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        plot_logs.main([str(run), '--labels', 'a', 'b'])
    assert '--labels gives 2 labels for 1 work dirs' in capsys.readouterr().err
