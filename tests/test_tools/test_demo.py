import importlib.util
import os
import os.path as osp
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / 'tools' / 'demo.py'


@pytest.fixture(scope='module')
def demo():
    spec = importlib.util.spec_from_file_location('demo', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _args(tmp_path):
    return [
        '--quick', '--work-dir',
        str(tmp_path / 'work'), '--data-root',
        str(tmp_path / 'data')
    ]


@pytest.mark.slow
def test_quick_demo_reports_and_saves(demo, tmp_path, capsys):
    assert demo.main(_args(tmp_path)) == 0
    out = capsys.readouterr().out
    assert 'before training' in out
    assert 'after 1 epochs' in out
    assert 'change' in out
    assert 'wall time' in out
    # One clustering row per epoch: epoch, clusters, outliers, purity, ARI.
    rows = [line.split() for line in out.splitlines()]
    assert any(row and row[0] == '1' and len(row) >= 5 for row in rows)

    work = tmp_path / 'work'
    checkpoints = list(work.glob('*.pth'))
    assert len(checkpoints) == 1
    assert (work / 'last_checkpoint').read_text().strip() == \
        checkpoints[0].name  # relative: the work dir can move
    assert str(checkpoints[0]) in out
    assert (tmp_path / 'data' / 'meta.json').is_file()

    # A second run moves the first aside rather than deleting it.
    assert demo.main(_args(tmp_path) + ['--epochs', '1']) == 0
    out = capsys.readouterr().out
    moved = [p for p in tmp_path.iterdir() if p.name.startswith('work_')]
    assert len(moved) == 1
    assert list(moved[0].glob('*.pth'))
    assert f'moved to {moved[0]}' in out
    assert len(list(work.glob('*.pth'))) == 1


@pytest.mark.slow
def test_quick_demo_is_reproducible(demo, tmp_path):
    """Two deterministic runs with one seed: same clusters and metrics."""
    found = []
    for name in ('a', 'b'):
        work = tmp_path / name
        argv = [
            '--quick', '--epochs', '2', '--seed', '5', '--deterministic',
            '--work-dir',
            str(work), '--data-root',
            str(tmp_path / 'data')
        ]
        assert demo.main(argv) == 0
        records = demo.read_scalars(
            str(next(p for p in work.iterdir() if p.is_dir())))
        # Times differ from run to run; everything else must not.
        found.append([{
            k: v
            for k, v in rec.items() if 'time' not in k and k != 'eta'
        } for rec in records])
    assert len(found[0]) == len(found[1]) > 0
    assert found[0] == found[1]
    clusters = [rec for rec in found[0] if 'clusters' in rec]
    assert {rec['epoch'] for rec in clusters} == {1, 2}


def test_move_aside(demo, tmp_path):
    work = tmp_path / 'run'
    assert demo.move_aside(str(work), overwrite=False) is None
    work.mkdir()
    assert demo.move_aside(str(work), overwrite=False) is None  # empty
    (work / 'a.pth').write_bytes(b'x')
    first = demo.move_aside(str(work), overwrite=False)
    assert first and osp.isfile(osp.join(first, 'a.pth'))
    assert not work.exists()
    # Same modification time: the new name gets a suffix.
    work.mkdir()
    (work / 'b.pth').write_bytes(b'y')
    os.utime(work, (osp.getmtime(first), osp.getmtime(first)))
    second = demo.move_aside(str(work), overwrite=False)
    assert second != first and osp.isfile(osp.join(second, 'b.pth'))
    work.mkdir()
    (work / 'c.pth').write_bytes(b'z')
    assert demo.move_aside(str(work), overwrite=True) is None
    assert not work.exists()


def test_collect_reads_before_after_and_clusters(demo):
    records = [
        {'val_init/reid/mAP': 1.0, 'val_init/reid/rank1': 2.0,
         'val_init/reid/rank5': 3.0, 'step': 0},
        {'clusters': 5.0, 'outliers': 1.0, 'ari': 0.1, 'epoch': 1,
         'iter': 2, 'step': 2},
        {'clusters': 5.0, 'outliers': 1.0, 'ari': 0.1, 'epoch': 1,
         'iter': 4, 'step': 4},
        {'clusters': 7.0, 'outliers': 0.0, 'ari': 0.5, 'epoch': 2,
         'iter': 6, 'step': 6},
        {'reid/mAP': 50.0, 'reid/rank1': 60.0, 'reid/rank5': 70.0,
         'step': 2},
    ]
    found = demo.collect(records)
    assert found['before']['reid/mAP'] == 1.0
    assert found['evals'] == [(2, records[-1])]
    assert sorted(found['clusters']) == [1, 2]
    assert found['clusters'][2]['clusters'] == 7.0
    # An evaluation before training logged as a validation of epoch 0.
    old_style = [dict(records[-1], step=0)] + records[1:]
    found = demo.collect(old_style)
    assert found['before']['reid/mAP'] == 50.0
    assert found['evals'] == [(2, records[-1])]
