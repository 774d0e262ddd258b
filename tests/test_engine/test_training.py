"""End-to-end training: one process, resume inside an epoch, two processes.

These run the real Runner on a tiny synthetic dataset (ResNet-18 at 64x32,
4 iterations an epoch), so they take some seconds each.
"""
import os
import os.path as osp
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from e2e_utils import make_tiny_dataset, tiny_config, write_config
from mmengine.runner import Runner

from mmreid_rcl.utils import register_all_modules

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope='module')
def tiny_root(tmp_path_factory):
    return make_tiny_dataset(str(tmp_path_factory.mktemp('tiny') / 'data'))


def _train(cfg):
    register_all_modules()
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def _state(runner):
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


def test_single_process_training_saves_clustering_state(tiny_root, tmp_path):
    runner = _train(tiny_config(tiny_root, str(tmp_path / 'run')))
    model = runner.model
    num_train = len(runner.train_dataloader.dataset)
    labels = model.pseudo_labels
    assert labels.shape == (num_train, )
    assert int(model.cluster_epoch) == 1  # the second epoch's clustering
    num_clusters = int(labels.max()) + 1
    assert model.head.memory.prototypes.shape == (num_clusters, 512)
    assert torch.allclose(
        model.head.memory.prototypes.norm(dim=1), torch.ones(num_clusters))
    hub = runner.message_hub
    assert hub.get_scalar('train/clusters').current() == num_clusters
    assert 0.0 <= hub.get_scalar('train/ari').current() <= 1.0
    ckpt = torch.load(
        tmp_path / 'run' / 'epoch_2.pth', map_location='cpu',
        weights_only=False)
    assert torch.equal(ckpt['state_dict']['pseudo_labels'], labels)
    assert torch.equal(ckpt['state_dict']['head.memory.prototypes'],
                       model.head.memory.prototypes)


def test_resume_inside_an_epoch_continues_identically(tiny_root, tmp_path):
    # Run A goes through uninterrupted, saving after iteration 6 (the
    # second batch of epoch 2); run B resumes from that checkpoint.
    run_a = _train(
        tiny_config(tiny_root, str(tmp_path / 'a'), checkpoint_iters=6))
    ckpt = tmp_path / 'a' / 'iter_6.pth'
    assert ckpt.is_file()
    cfg_b = tiny_config(tiny_root, str(tmp_path / 'b'))
    cfg_b.resume = True
    cfg_b.load_from = str(ckpt)
    register_all_modules()
    runner_b = Runner.from_cfg(cfg_b)
    calls = []
    hook = [h for h in runner_b.hooks if type(h).__name__ == 'ReClusterHook']
    original = hook[0].recluster
    hook[0].recluster = lambda runner: calls.append(1) or original(runner)
    runner_b.train()
    # Epoch 2's clustering came from the checkpoint, not a new clustering.
    assert calls == []
    assert runner_b.iter == run_a.iter == 8
    state_a, state_b = _state(run_a), _state(runner_b)
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.allclose(state_a[key].float(), state_b[key].float(),
                              atol=1e-5), key
    opt_a = run_a.optim_wrapper.state_dict()['state']
    opt_b = runner_b.optim_wrapper.state_dict()['state']
    for key in opt_a:
        assert torch.allclose(opt_a[key]['exp_avg'], opt_b[key]['exp_avg'],
                              atol=1e-6)


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_cpu_processes_hold_identical_clustering(tiny_root, tmp_path):
    cfg = tiny_config(tiny_root, str(tmp_path / 'dist'), max_epochs=2)
    cfg.custom_imports = dict(imports=['rank_dump_hook'])
    cfg.custom_hooks.append(dict(type='RankStateDumpHook'))
    path = write_config(cfg, str(tmp_path / 'dist_cfg.py'))
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [str(HERE), str(REPO), env.get('PYTHONPATH', '')])
    env['OMP_NUM_THREADS'] = '1'
    cmd = [
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
        f'--master_port={_free_port()}',
        str(REPO / 'tools' / 'train.py'), path, '--launcher', 'pytorch'
    ]
    result = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    states = [
        torch.load(
            osp.join(tmp_path, 'dist', f'rank{r}_state.pth'),
            weights_only=False) for r in (0, 1)
    ]
    assert states[0]['world_size'] == 2
    assert torch.equal(states[0]['pseudo_labels'], states[1]['pseudo_labels'])
    assert states[0]['pseudo_labels'].numel() == 96
    # Exact: labels are broadcast from rank 0, and both ranks build and
    # update the prototypes from the same gathered features with the same
    # code on one thread each.
    assert torch.equal(states[0]['prototypes'], states[1]['prototypes'])
    # DDP keeps the weights in step; the ranks drew different batches.
    assert torch.allclose(states[0]['backbone_w'], states[1]['backbone_w'])
    b0 = {i for batch in states[0]['batches'] for i in batch}
    b1 = {i for batch in states[1]['batches'] for i in batch}
    assert states[0]['batches'] != states[1]['batches']
    assert b0 and b1


def test_test_tool_evaluates_a_checkpoint_and_train_tool_protects_work_dir(
        tiny_root, tmp_path):
    work_dir = tmp_path / 'run'
    cfg = tiny_config(tiny_root, str(work_dir), max_epochs=1, num_iters=2)
    path = write_config(cfg, str(tmp_path / 'cfg.py'))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    train = [sys.executable, str(REPO / 'tools' / 'train.py'), path]
    result = subprocess.run(train, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    ckpt = work_dir / 'epoch_1.pth'
    assert ckpt.is_file()
    # A second run in the same work dir must not overwrite its checkpoints.
    before = ckpt.stat().st_mtime_ns
    again = subprocess.run(train, env=env, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode != 0
    assert 'already holds checkpoints' in again.stderr
    assert ckpt.stat().st_mtime_ns == before
    test = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'test.py'), path, str(ckpt),
         '--work-dir', str(tmp_path / 'test')],
        env=env, capture_output=True, text=True, timeout=600)
    assert test.returncode == 0, test.stderr[-3000:]
    assert 'reid/mAP' in test.stdout
    missing = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'test.py'), path,
         str(tmp_path / 'nope.pth')],
        env=env, capture_output=True, text=True, timeout=600)
    assert missing.returncode != 0 and 'nope.pth' in missing.stderr
    # The config's initial weights, without a checkpoint; not both.
    initial = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'test.py'), path,
         '--initial-weights', '--work-dir', str(tmp_path / 'test_init')],
        env=env, capture_output=True, text=True, timeout=600)
    assert initial.returncode == 0, initial.stderr[-3000:]
    assert 'reid/mAP' in initial.stdout
    both = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'test.py'), path, str(ckpt),
         '--initial-weights'],
        env=env, capture_output=True, text=True, timeout=600)
    assert both.returncode == 2 and 'one of them' in both.stderr
