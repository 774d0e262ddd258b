"""--launcher slurm: the torch.distributed variables from slurm's, and the
srun scripts (run here through a stand-in srun that starts the tasks)."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
from tool_utils import TESTS, load_module

from mmreid_rcl.utils import dist_utils
from mmreid_rcl.utils.dist_utils import first_slurm_host, slurm_dist_env

REPO = TESTS.parent

SLURM = dict(
    SLURM_PROCID='5',
    SLURM_NTASKS='8',
    SLURM_LOCALID='1',
    SLURM_JOB_NODELIST='gpu[03-05,9],cpu1')


@pytest.mark.parametrize('nodelist, host', [
    ('node7', 'node7'),
    ('a1,b2', 'a1'),
    ('gpu[03-05,9],cpu1', 'gpu03'),
    ('gpu[9,03-05]', 'gpu9'),
    ('rack[1-2]-n[07-08],x', 'rack1-n07'),
    ('  host-a.cluster  ', 'host-a.cluster'),
])
def test_first_slurm_host(nodelist, host):
    assert first_slurm_host(nodelist) == host


@pytest.mark.parametrize('nodelist', ['', 'gpu[01-03', 'gpu[[1]]'])
def test_bad_node_list_is_named(nodelist):
    with pytest.raises(ValueError, match='slurm node list'):
        first_slurm_host(nodelist)


def test_slurm_env_from_a_fake_environment():
    env = dict(SLURM, PATH='/bin')
    assert slurm_dist_env(env) == dict(
        RANK='5',
        WORLD_SIZE='8',
        LOCAL_RANK='1',
        MASTER_ADDR='gpu03',
        MASTER_PORT='29500')
    assert env == dict(SLURM, PATH='/bin')  # not modified
    # The step's nodes come first; a set master address and port are kept.
    step = dict(SLURM, SLURM_STEP_NODELIST='n[2-3]')
    assert slurm_dist_env(step)['MASTER_ADDR'] == 'n2'
    kept = dict(SLURM, MASTER_ADDR='10.0.0.1', MASTER_PORT='2345')
    out = slurm_dist_env(kept)
    assert (out['MASTER_ADDR'], out['MASTER_PORT']) == ('10.0.0.1', '2345')
    # Without a node list a set MASTER_ADDR is enough.
    no_list = {k: v for k, v in kept.items() if k != 'SLURM_JOB_NODELIST'}
    assert slurm_dist_env(no_list)['MASTER_ADDR'] == '10.0.0.1'


def test_slurm_env_errors_name_the_variable():
    with pytest.raises(RuntimeError,
                       match='needs SLURM_PROCID, SLURM_LOCALID in the '
                       'environment: start the processes with srun'):
        slurm_dist_env(dict(SLURM_NTASKS='2', SLURM_NODELIST='a'))
    with pytest.raises(RuntimeError, match='needs SLURM_JOB_NODELIST'):
        slurm_dist_env({
            k: v
            for k, v in SLURM.items() if k != 'SLURM_JOB_NODELIST'
        })
    with pytest.raises(RuntimeError, match="SLURM_NTASKS must be an "
                       "integer, got '2x'"):
        slurm_dist_env(dict(SLURM, SLURM_NTASKS='2x'))
    with pytest.raises(RuntimeError, match='SLURM_PROCID=8, SLURM_NTASKS=8'):
        slurm_dist_env(dict(SLURM, SLURM_PROCID='8'))
    with pytest.raises(RuntimeError, match='SLURM_JOB_NODELIST: cannot read'):
        slurm_dist_env(dict(SLURM, SLURM_JOB_NODELIST='gpu[1-2'))


def test_init_process_group_for_slurm(monkeypatch):
    environ = dict(SLURM, LOCAL_RANK='0')
    monkeypatch.setattr(dist_utils.os, 'environ', environ)
    monkeypatch.setattr(dist_utils.torch_dist, 'is_initialized',
                        lambda: False)
    calls = []
    monkeypatch.setattr(dist_utils.torch_dist, 'init_process_group',
                        lambda **kwargs: calls.append(kwargs))
    dist_utils.init_process_group_for('slurm', 'gloo', 30)
    # LOCAL_RANK set by the tool's --local_rank default is replaced.
    assert {k: environ[k]
            for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                      'MASTER_PORT')} == dict(
                          RANK='5',
                          WORLD_SIZE='8',
                          LOCAL_RANK='1',
                          MASTER_ADDR='gpu03',
                          MASTER_PORT='29500')
    assert len(calls) == 1 and calls[0]['backend'] == 'gloo'
    assert calls[0]['timeout'].total_seconds() == 30
    with pytest.raises(ValueError, match='none, pytorch .* or slurm'):
        dist_utils.init_process_group_for('mpi', 'gloo')


# A stand-in for srun: logs its arguments, then starts --ntasks copies of
# the command (what follows the options) with the slurm variables set.
FAKE_SRUN = '''#!{python}
import json, os, subprocess, sys
args = sys.argv[1:]
with open(os.environ['FAKE_SRUN_LOG'], 'w') as f:
    json.dump(args, f)
ntasks = int(next(a for a in args if a.startswith('--ntasks='))[9:])
cmd = args[next(i for i, a in enumerate(args) if not a.startswith('-')):]
procs = [
    subprocess.Popen(cmd, env=dict(
        os.environ, SLURM_PROCID=str(r), SLURM_NTASKS=str(ntasks),
        SLURM_LOCALID=str(r), SLURM_JOB_NODELIST='localhost'))
    for r in range(ntasks)
]
sys.exit(max(p.wait() for p in procs))
'''


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _fake_srun_env(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    srun = bin_dir / 'srun'
    srun.write_text(FAKE_SRUN.format(python=sys.executable))
    srun.chmod(0o755)
    env = dict(os.environ)
    env.update(
        PATH=f'{bin_dir}{os.pathsep}{env.get("PATH", "")}',
        FAKE_SRUN_LOG=str(tmp_path / 'srun_args.json'),
        PYTHON=sys.executable,
        PORT=str(_free_port()),
        OMP_NUM_THREADS='1',
        PYTHONPATH=os.pathsep.join(
            [str(TESTS / 'test_engine'),
             env.get('PYTHONPATH', '')]))
    env.pop('MASTER_ADDR', None)
    env.pop('MASTER_PORT', None)
    return env


def test_scripts_refuse_missing_arguments():
    for script in ('slurm_train.sh', 'slurm_test.sh'):
        result = subprocess.run(['bash', str(REPO / 'tools' / script), 'p'],
                                capture_output=True,
                                text=True)
        assert result.returncode == 2
        assert 'usage:' in result.stderr and 'PARTITION JOB_NAME' in \
            result.stderr


@pytest.mark.slow
def test_slurm_train_runs_a_task(tmp_path):
    """A CPU task started by the script trains in a gloo group.

    One task keeps the test short; two processes forming one group are
    tested with torchrun (tests/test_engine/test_training.py), and the
    variables of every rank above.
    """
    e2e = load_module('e2e_utils', TESTS / 'test_engine' / 'e2e_utils.py')
    data_root = e2e.make_tiny_dataset(str(tmp_path / 'data'))
    work_dir = tmp_path / 'work'
    cfg = e2e.tiny_config(data_root, str(work_dir), max_epochs=1,
                          num_iters=2)
    cfg.custom_imports = dict(imports=['rank_dump_hook'])
    cfg.custom_hooks.append(dict(type='RankStateDumpHook'))
    cfg.log_level = 'INFO'  # the environment summary names the launcher
    config = e2e.write_config(cfg, str(tmp_path / 'cfg.py'))
    env = _fake_srun_env(tmp_path)
    env.update(GPUS='1', CPUS_PER_TASK='1', SRUN_ARGS='--quiet')
    result = subprocess.run([
        'bash',
        str(REPO / 'tools' / 'slurm_train.sh'), 'part', 'job', config,
        str(work_dir), '--cfg-options', 'train_cfg.val_interval=100'
    ],
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(env['FAKE_SRUN_LOG']) as f:
        args = json.load(f)
    assert args[:7] == [
        '--partition=part', '--job-name=job', '--gres=gpu:1', '--ntasks=1',
        '--ntasks-per-node=1', '--cpus-per-task=1', '--kill-on-bad-exit=1'
    ]
    assert args[7] == '--quiet'
    assert args[8:] == [
        sys.executable, '-u',
        str(REPO / 'tools' / 'train.py'), config, f'--work-dir={work_dir}',
        '--launcher=slurm', '--cfg-options', 'train_cfg.val_interval=100'
    ]
    state = torch.load(
        osp.join(work_dir, 'rank0_state.pth'), weights_only=False)
    assert state['world_size'] == 1
    assert 'Distributed launcher: slurm' in result.stdout
    assert 'Distributed training: True' in result.stdout
    assert state['pseudo_labels'].numel() == 96
    assert (work_dir / 'epoch_1.pth').is_file()


def test_slurm_test_passes_its_arguments(tmp_path):
    env = _fake_srun_env(tmp_path)
    # The stand-in runs a command that only prints the slurm variables.
    env.update(GPUS='16', PYTHON='echo')
    result = subprocess.run([
        'bash',
        str(REPO / 'tools' / 'slurm_test.sh'), 'gpu', 'eval', 'c.py', 'k.pth',
        '--work-dir', 'w'
    ],
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    with open(env['FAKE_SRUN_LOG']) as f:
        args = json.load(f)
    # At most 8 GPUs a node: 16 tasks on two nodes.
    assert args[:6] == [
        '--partition=gpu', '--job-name=eval', '--gres=gpu:8', '--ntasks=16',
        '--ntasks-per-node=8', '--cpus-per-task=5'
    ]
    assert args[args.index('echo'):] == [
        'echo', '-u',
        str(REPO / 'tools' / 'test.py'), 'c.py', 'k.pth', '--launcher=slurm',
        '--work-dir', 'w'
    ]
    assert result.stdout.count('--launcher=slurm') == 16
