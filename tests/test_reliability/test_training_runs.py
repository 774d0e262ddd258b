"""Training runs against bad input and faults.

Resuming in a work dir without checkpoints, moved or copied work dirs,
unreadable checkpoints, a process killed while saving, ``--force`` over an
earlier run, ``--cfg-options data_root=`` and the collective timeout.
Most cases run ``tools/train.py``'s ``main`` with a stand-in Runner (the
checks happen before training); the killed save runs real training in a
subprocess.
"""
import datetime
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import _load_checkpoint

from mmreid_rcl.engine.runner import (CheckpointUnreadableError,
                                      find_resume_checkpoint,
                                      last_checkpoint_entry,
                                      load_local_checkpoint,
                                      remove_partial_writes,
                                      resolve_last_checkpoint,
                                      write_bytes_atomic)
from mmreid_rcl.utils import dist_utils
from mmreid_rcl.utils.config_utils import merge_cfg_options

REPO = Path(__file__).resolve().parents[2]
CUHK03_CONFIG = str(REPO / 'configs' / '_base_' / 'datasets' / 'cuhk03.py')


def _load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


e2e = _load_module('e2e_utils', REPO / 'tests' / 'test_engine' /
                   'e2e_utils.py')


@pytest.fixture(scope='module')
def train():
    return _load_module('train_tool', REPO / 'tools' / 'train.py')


class _StubRunner:
    """Stands in for mmengine's Runner: records the config it is given."""
    built = []

    @classmethod
    def from_cfg(cls, cfg):
        cls.built.append(cfg)
        return cls()

    def train(self):
        pass


@pytest.fixture
def run_main(train, monkeypatch):
    """Call tools/train.py's main with these arguments; return the config
    the Runner got (None when main stopped before)."""

    def run(*argv):
        _StubRunner.built = []
        monkeypatch.setattr(train, 'Runner', _StubRunner)
        monkeypatch.setattr(sys, 'argv', ['train.py', *map(str, argv)])
        train.main()
        return _StubRunner.built[-1] if _StubRunner.built else None

    return run


@pytest.fixture
def config(tmp_path):
    cfg = e2e.tiny_config(str(tmp_path / 'data'), str(tmp_path / 'unused'))
    return e2e.write_config(cfg, str(tmp_path / 'tiny_cfg.py'))


def _checkpoint(path: Path, epoch: int) -> Path:
    torch.save(
        dict(
            meta=dict(epoch=epoch, iter=2 * epoch),
            state_dict=dict(w=torch.full((1024, ), float(epoch)))), path)
    return path


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


# 1. --resume in a work dir without checkpoints


def test_resume_without_a_checkpoint_names_the_work_dir(
        run_main, config, tmp_path):
    work = tmp_path / 'run'
    (work / '20240101_000000').mkdir(parents=True)  # logs, no checkpoint
    with pytest.raises(SystemExit) as exc:
        run_main(config, '--resume', '--work-dir', work)
    assert str(exc.value) == (
        f'--resume: no checkpoint in {work} (no last_checkpoint file, no '
        'epoch_*.pth or iter_*.pth). To start a new run there, leave out '
        '--resume; to continue from a given file, pass --resume PATH.')
    assert _StubRunner.built == []


# 2. last_checkpoint relative to the work dir


def test_moved_or_copied_work_dir_resumes_from_its_own_files(
        run_main, config, tmp_path, capsys):
    orig = tmp_path / 'orig'
    orig.mkdir()
    assert last_checkpoint_entry(str(orig), str(orig / 'epoch_2.pth')) == \
        'epoch_2.pth'
    assert last_checkpoint_entry(str(orig), '/else/epoch_2.pth') == \
        '/else/epoch_2.pth'
    for epoch in (1, 2):
        _checkpoint(orig / f'epoch_{epoch}.pth', epoch)
    # An entry written by mmengine's hook: an absolute path.
    (orig / 'last_checkpoint').write_text(str(orig / 'epoch_2.pth'))
    copy = tmp_path / 'copy'
    shutil.copytree(orig, copy)
    assert resolve_last_checkpoint(str(copy)) == str(copy / 'epoch_2.pth')
    moved = tmp_path / 'moved'
    os.rename(orig, moved)
    cfg = run_main(config, '--resume', '--work-dir', moved)
    assert cfg.load_from == str(moved / 'epoch_2.pth') and cfg.resume
    assert capsys.readouterr().out.strip() == (
        f'--resume: resuming from {moved}/epoch_2.pth')
    # The entry ReIDCheckpointHook writes: the bare name.
    (moved / 'last_checkpoint').write_text('epoch_1.pth')
    assert find_resume_checkpoint(str(moved)).path == str(
        moved / 'epoch_1.pth')


# 3. unreadable checkpoints


def test_unreadable_checkpoint_is_named_and_resume_falls_back(
        run_main, config, tmp_path, capsys):
    work = tmp_path / 'run'
    work.mkdir()
    for epoch in (1, 2, 3):
        _checkpoint(work / f'epoch_{epoch}.pth', epoch)
    bad = _truncate(work / 'epoch_3.pth')
    (work / 'last_checkpoint').write_text('epoch_3.pth')
    prefix = f'checkpoint {bad} is unreadable (truncated or corrupt?): '
    for load in (load_local_checkpoint, _load_checkpoint):  # the Runner's
        with pytest.raises(CheckpointUnreadableError) as exc:
            load(str(bad))
        assert str(exc.value).startswith(prefix)
        assert 'PytorchStreamReader' in str(exc.value)
    cfg = run_main(config, '--resume', '--work-dir', work)
    assert cfg.load_from == str(work / 'epoch_2.pth')
    out = capsys.readouterr()
    assert out.err.startswith(f'--resume: skipped {bad}: {prefix}')
    assert out.out.strip().splitlines()[-1] == (
        f'--resume: resuming from {work}/epoch_2.pth')
    # Nothing readable at all.
    _truncate(work / 'epoch_1.pth')
    _truncate(work / 'epoch_2.pth')
    with pytest.raises(SystemExit, match=f'no readable checkpoint in {work} '
                       r'\(epoch_3.pth: checkpoint .* is unreadable'):
        run_main(config, '--resume', '--work-dir', work)


# 4. atomic checkpoint writing


def test_failed_write_keeps_the_earlier_file(tmp_path, monkeypatch):
    target = tmp_path / 'epoch_1.pth'
    write_bytes_atomic(b'first', target)
    assert target.read_bytes() == b'first'

    def fail(src, dst):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'replace', fail)
    with pytest.raises(OSError, match='disk full'):
        write_bytes_atomic(b'second', target)
    monkeypatch.undo()
    assert target.read_bytes() == b'first'
    assert sorted(os.listdir(tmp_path)) == ['epoch_1.pth']


# Runs tools/train.py, stalling the rename of epoch_2.pth after half its
# bytes reached the temporary file: the state a SIGKILL mid-save leaves.
_STALLING_TRAIN = '''
import os, runpy, sys, time
target, marker, script = sys.argv[1:4]
replace = os.replace
def stalling_replace(src, dst):
    if os.path.basename(dst) == target:
        os.truncate(src, os.path.getsize(src) // 2)
        open(marker, 'w').close()
        time.sleep(600)
    return replace(src, dst)
os.replace = stalling_replace
sys.argv = [script] + sys.argv[4:]
runpy.run_path(script, run_name='__main__')
'''


@pytest.mark.slow
def test_killed_while_saving_resumes_from_an_intact_checkpoint(tmp_path):
    data = e2e.make_tiny_dataset(str(tmp_path / 'data'))
    work = tmp_path / 'run'
    cfg = e2e.tiny_config(data, str(work), max_epochs=2, num_iters=2)
    cfg.default_hooks.checkpoint = dict(
        type='ReIDCheckpointHook', interval=1, max_keep_ckpts=1)
    config = e2e.write_config(cfg, str(tmp_path / 'cfg.py'))
    script = tmp_path / 'stalling_train.py'
    script.write_text(_STALLING_TRAIN)
    marker = tmp_path / 'saving'
    env = dict(os.environ, PYTHONPATH=str(REPO))
    train = str(REPO / 'tools' / 'train.py')
    proc = subprocess.Popen(
        [sys.executable, str(script), 'epoch_2.pth', str(marker), train,
         config],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not marker.exists() and proc.poll() is None:
            assert time.monotonic() < deadline, 'the save never started'
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    names = sorted(os.listdir(work))
    partial = [n for n in names if n.startswith('.epoch_2.pth.')]
    assert 'epoch_2.pth' not in names and len(partial) == 1
    assert (work / 'last_checkpoint').read_text() == 'epoch_1.pth'

    resumed = subprocess.run(
        [sys.executable, train, config, '--resume'],
        env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f'--resume: resuming from {work}/epoch_1.pth' in resumed.stdout
    checkpoint = load_local_checkpoint(str(work / 'epoch_2.pth'))
    assert checkpoint['meta']['epoch'] == 2
    assert (work / 'last_checkpoint').read_text() == 'epoch_2.pth'
    # max_keep_ckpts=1 dropped epoch_1.pth once epoch_2.pth was saved; the
    # killed save's temporary file was cleared at the start.
    assert not (work / 'epoch_1.pth').exists()
    assert not [n for n in os.listdir(work) if n.endswith('.tmp')]


def test_remove_partial_writes_only_touches_temporary_files(tmp_path):
    keep = ['epoch_1.pth', '.hidden.tmp', '.epoch_2.pth.notahexname.tmp']
    for name in keep + ['.epoch_2.pth.0123456789ab.tmp']:
        (tmp_path / name).write_bytes(b'x')
    removed = remove_partial_writes(str(tmp_path))
    assert removed == [str(tmp_path / '.epoch_2.pth.0123456789ab.tmp')]
    assert sorted(os.listdir(tmp_path)) == sorted(keep)


# 5. --force moves the earlier run aside


def test_force_moves_the_earlier_run_aside(run_main, config, tmp_path,
                                           capsys):
    work = tmp_path / 'run'
    (work / '20240101_000000').mkdir(parents=True)
    for epoch in (1, 2, 3):
        _checkpoint(work / f'epoch_{epoch}.pth', epoch)
    (work / 'last_checkpoint').write_text('epoch_3.pth')
    before = {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()}
    with pytest.raises(SystemExit, match='already holds checkpoints'):
        run_main(config, '--work-dir', work)
    with pytest.raises(SystemExit) as exc:
        run_main(config, '--work-dir', work, '--force', '--resume')
    assert str(exc.value) == (
        '--force starts a new run and --resume (or resume in the config) '
        'continues one: use only one')

    cfg = run_main(config, '--work-dir', work, '--force')
    assert cfg.work_dir == str(work) and not cfg.get('resume')
    [moved] = [p for p in tmp_path.iterdir() if '.old-' in p.name]
    assert moved.name.startswith('run.old-')
    assert capsys.readouterr().out.strip() == (
        f'--force: moved the earlier run in {work} to {moved} (nothing '
        f'deleted); the new run starts in an empty {work}')
    assert not work.exists()
    after = {p.name: p.read_bytes() for p in moved.iterdir() if p.is_file()}
    assert after == before and (moved / '20240101_000000').is_dir()
    # A second --force over the new run keeps both earlier ones.
    work.mkdir()
    (work / 'epoch_1.pth').write_bytes(b'new run')
    os.utime(work, (moved.stat().st_mtime, moved.stat().st_mtime))
    run_main(config, '--work-dir', work, '--force')
    assert len([p for p in tmp_path.iterdir() if '.old-' in p.name]) == 2


# 6. --cfg-options data_root=


def test_data_root_option_reaches_every_loader(run_main, tmp_path):
    cfg = run_main(CUHK03_CONFIG, '--work-dir', tmp_path / 'run',
                   '--cfg-options', 'data_root=/x',
                   'val_dataloader.dataset.data_root=/y')
    roots = {
        key: cfg[key].dataset.data_root
        for key in ('train_dataloader', 'cluster_dataloader',
                    'val_dataloader', 'test_dataloader')
    }
    assert roots == dict(
        train_dataloader='/x', cluster_dataloader='/x',
        val_dataloader='/y', test_dataloader='/x')

    wrapped = Config.fromfile(CUHK03_CONFIG)
    inner = wrapped.train_dataloader.dataset
    wrapped.train_dataloader.dataset = dict(
        type='ConcatDataset', datasets=[inner, inner])
    with pytest.raises(ValueError) as exc:
        merge_cfg_options(wrapped, dict(data_root='/x'))
    assert str(exc.value) == (
        '--cfg-options data_root=/x: train_dataloader.dataset '
        '(ConcatDataset) wraps other datasets in '
        'train_dataloader.dataset.datasets, each with its own data_root; '
        'set those in the config instead')
    with pytest.raises(SystemExit, match='expected one folder'):
        run_main(CUHK03_CONFIG, '--work-dir', tmp_path / 'run',
                 '--cfg-options', 'data_root=/a,/b')


# 7. the collective timeout


def test_collective_timeout_comes_from_the_config(run_main, config,
                                                  monkeypatch):
    assert dist_utils.collective_timeout_s(None, 'gloo') == 600
    assert dist_utils.collective_timeout_s(None, 'nccl') == 1800
    assert dist_utils.collective_timeout_s(45, 'nccl') == 45
    assert dist_utils.collective_timeout_s(2.5, 'gloo') == 2.5
    for bad in (0, -3, True, '600', float('nan'), float('inf')):
        with pytest.raises(ValueError) as exc:
            dist_utils.collective_timeout_s(bad, 'gloo')
        assert str(exc.value) == (
            'env_cfg.dist_cfg.timeout must be a positive number of seconds '
            f'(e.g. 600), got {bad!r}')
    with pytest.raises(SystemExit) as exc:
        run_main(config, '--cfg-options', 'env_cfg.dist_cfg.timeout=abc')
    assert str(exc.value) == (
        f'{config}: env_cfg.dist_cfg.timeout must be a positive number of '
        "seconds (e.g. 600), got 'abc'")

    started = {}
    monkeypatch.setattr(dist_utils.torch_dist, 'is_initialized',
                        lambda: False)
    monkeypatch.setattr(dist_utils.torch_dist, 'init_process_group',
                        lambda **kwargs: started.update(kwargs))
    for key, value in dict(RANK='0', WORLD_SIZE='1', MASTER_ADDR='x',
                           MASTER_PORT='1').items():
        monkeypatch.setenv(key, value)
    dist_utils.init_process_group_for('pytorch', 'gloo')
    assert started['timeout'] == datetime.timedelta(seconds=600)
    dist_utils.init_process_group_for('pytorch', 'gloo', 90)
    assert started['timeout'] == datetime.timedelta(seconds=90)
