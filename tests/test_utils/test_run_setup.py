"""The run set-up that tools/train.py and tools/test.py share."""
import argparse
import os.path as osp
import sys

import pytest
from mmengine.config import Config

from mmreid_rcl.utils import dist_utils
from mmreid_rcl.utils.run_setup import (add_launcher_arguments,
                                        export_local_rank, init_run,
                                        load_run_config,
                                        make_projects_importable)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture
def config(tmp_path):
    path = tmp_path / 'my_run.py'
    Config(dict(model=dict(type='X', depth=18),
                train_dataloader=dict(batch_size=4))).dump(str(path))
    return str(path)


def test_launcher_arguments(monkeypatch):
    parser = argparse.ArgumentParser()
    add_launcher_arguments(parser)
    args = parser.parse_args([])
    assert (args.launcher, args.local_rank) == ('none', 0)
    args = parser.parse_args(['--launcher', 'slurm', '--local-rank', '3'])
    assert (args.launcher, args.local_rank) == ('slurm', 3)
    with pytest.raises(SystemExit):
        parser.parse_args(['--launcher', 'mpi'])
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    export_local_rank(args)
    assert dist_utils.os.environ['LOCAL_RANK'] == '3'
    # A launcher's value is kept.
    monkeypatch.setenv('LOCAL_RANK', '1')
    export_local_rank(args)
    assert dist_utils.os.environ['LOCAL_RANK'] == '1'


def test_work_dir_from_the_command_line_the_config_or_its_name(
        config, tmp_path):
    cfg = load_run_config(config)
    assert cfg.work_dir == osp.join('./work_dirs', 'my_run')
    assert cfg.launcher == 'none'
    cfg = load_run_config(config, 'pytorch', work_dir=str(tmp_path / 'w'))
    assert (cfg.work_dir, cfg.launcher) == (str(tmp_path / 'w'), 'pytorch')
    Config(dict(work_dir='from_config')).dump(str(tmp_path / 'b.py'))
    assert load_run_config(str(tmp_path / 'b.py')).work_dir == 'from_config'


def test_cfg_options_are_merged_or_refused_by_name(config):
    cfg = load_run_config(
        config, cfg_options={'train_dataloader.batch_size': 8})
    assert cfg.train_dataloader.batch_size == 8
    with pytest.raises(SystemExit,
                       match='data_root=3: expected one folder'):
        load_run_config(config, cfg_options={'data_root': 3})


def test_init_run_names_the_config_when_the_group_fails(config, monkeypatch):
    calls = []

    def refuse(launcher, backend, timeout):
        calls.append((launcher, backend, timeout))
        raise ValueError('no such backend')

    monkeypatch.setattr('mmreid_rcl.utils.run_setup.init_process_group_for',
                        refuse)
    cfg = load_run_config(config, 'pytorch')
    cfg.env_cfg = dict(dist_cfg=dict(backend='gloo', timeout=30))
    with pytest.raises(SystemExit,
                       match=f'^{config}: no such backend$'):
        init_run(cfg, config, 'pytorch')
    assert calls == [('pytorch', 'gloo', 30)]


def test_projects_importable(monkeypatch):
    monkeypatch.setattr(sys, 'path',
                        [p for p in sys.path if osp.abspath(p or '.') != REPO])
    make_projects_importable()
    assert sys.path[0] == REPO
    make_projects_importable()
    assert sys.path.count(REPO) == 1
