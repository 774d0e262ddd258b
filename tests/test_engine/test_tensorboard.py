"""The runtime config logs to TensorBoard beside the local scalar logs.

A tiny run (one epoch of 2 iterations on the synthetic data, ResNet-18 at
64x32) with the visualizer of ``configs/_base_/default_runtime.py`` must
leave a TensorBoard events file next to ``scalars.json`` holding the same
``loss``, ``lr``, ``cluster/*``, ``val_init/reid/*`` and ``reid/*``
scalars at the same steps.
"""
import glob
import json
import os.path as osp
from pathlib import Path

import pytest
from e2e_utils import make_tiny_dataset, tiny_config
from mmengine.config import Config
from mmengine.runner import Runner

from mmreid_rcl.utils import register_all_modules

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / 'configs' / '_base_' / 'default_runtime.py'


def _read_events(path):
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    acc = EventAccumulator(path, size_guidance={'scalars': 0})
    acc.Reload()
    return {
        tag: {e.step: e.value
              for e in acc.Scalars(tag)}
        for tag in acc.Tags()['scalars']
    }


def _read_json(path):
    scalars = {}
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            step = rec.pop('step')
            for key, value in rec.items():
                scalars.setdefault(key, {})[step] = value
    return scalars


def test_runtime_config_names_both_backends():
    backends = Config.fromfile(str(RUNTIME)).visualizer.vis_backends
    assert [b['type'] for b in backends] == [
        'LocalVisBackend', 'TensorboardVisBackend'
    ]


@pytest.mark.slow
def test_training_writes_tensorboard_events(tmp_path):
    root = make_tiny_dataset(str(tmp_path / 'data'))
    cfg = tiny_config(root, str(tmp_path / 'run'), max_epochs=1, num_iters=2)
    cfg.visualizer = Config.fromfile(str(RUNTIME)).visualizer
    cfg.custom_hooks.append(dict(type='EvaluateBeforeTrainHook'))
    cfg.train_cfg.val_interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=100)
    cfg.custom_hooks[0]['cluster_after_train'] = False
    register_all_modules()
    runner = Runner.from_cfg(cfg)
    runner.train()
    runner.visualizer.close()

    vis_dirs = glob.glob(osp.join(str(tmp_path / 'run'), '*', 'vis_data'))
    assert len(vis_dirs) == 1
    events = glob.glob(osp.join(vis_dirs[0], 'events.out.tfevents.*'))
    assert len(events) == 1, f'no TensorBoard events file in {vis_dirs[0]}'
    board = _read_events(events[0])
    local = _read_json(osp.join(vis_dirs[0], 'scalars.json'))
    for tag in ('loss', 'lr', 'cluster/clusters', 'cluster/outliers',
                'cluster/ari', 'cluster/nmi', 'val_init/reid/mAP',
                'reid/mAP', 'reid/rank1', 'epoch/time'):
        assert tag in board, f'{tag} missing from the events file'
        assert set(board[tag]) == set(local[tag]), tag
        for step, value in local[tag].items():
            assert board[tag][step] == pytest.approx(value, rel=1e-6), tag
    # The clustering before epoch 1 is logged at step 0, the metrics after
    # it at step 1.
    assert set(board['cluster/clusters']) == {0}
    assert set(board['reid/mAP']) == {1}
    assert board['cluster/clusters'][0] >= 2
