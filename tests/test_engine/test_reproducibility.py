"""Reproducible runs: the same seed gives the same run, augmentation on.

Two runs with one seed must give identical pseudo labels every epoch and
identical metrics, whatever the number of data-loader workers, and a run
resumed inside an epoch must continue as the uninterrupted one. Both runs
execute in this process with the same thread count and the same call path,
so their floating-point results are bit-identical by construction, not by
luck of the summation order.
"""
import pickle

import numpy as np
import pytest
import torch
from e2e_utils import make_tiny_dataset, tiny_config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmreid_rcl.datasets import Market1501Dataset
from mmreid_rcl.datasets.samplers.seeded_draws import (DrawIndex, draw_seeds,
                                                       seeded_global_rngs)
from mmreid_rcl.registry import HOOKS
from mmreid_rcl.utils import register_all_modules


@pytest.fixture(scope='module')
def tiny_root(tmp_path_factory):
    return make_tiny_dataset(str(tmp_path_factory.mktemp('tiny') / 'data'))


@HOOKS.register_module(force=True)
class _LabelRecorderHook(Hook):
    """Records the pseudo labels of every epoch (test only)."""

    priority = 'LOWEST'

    def __init__(self):
        self.labels = []

    def before_train_epoch(self, runner):
        self.labels.append(runner.model.pseudo_labels.clone())


def _run(cfg, workers=0):
    cfg.randomness = dict(seed=3, deterministic=True)
    cfg.custom_hooks.append(dict(type='_LabelRecorderHook'))
    if workers:
        cfg.train_dataloader.num_workers = workers
    register_all_modules()
    runner = Runner.from_cfg(cfg)
    runner.train()
    recorder = [h for h in runner.hooks if type(h).__name__ ==
                '_LabelRecorderHook'][0]
    metrics = runner.val_loop.run()
    state = {k: v.clone() for k, v in runner.model.state_dict().items()}
    return recorder.labels, metrics, state


def test_draw_index_pickles_and_indexes_like_an_int():
    idx = DrawIndex(5, 123456789012345)
    back = pickle.loads(pickle.dumps(idx))
    assert back == 5 and back.draw_seed == 123456789012345
    assert [10, 11, 12, 13, 14, 15][idx] == 15
    assert repr(idx) == 'DrawIndex(5, draw_seed=123456789012345)'


def test_draw_seeds_depend_on_seed_epoch_and_position():
    pos = np.arange(1000)
    seeds = draw_seeds(0, 0, pos)
    assert seeds.dtype == np.int64 and (seeds >= 0).all()
    assert len(np.unique(seeds)) == 1000
    np.testing.assert_array_equal(seeds, draw_seeds(0, 0, pos))
    assert not np.isin(draw_seeds(0, 1, pos), seeds).any()
    assert not np.isin(draw_seeds(1, 0, pos), seeds).any()


def test_seeded_global_rngs_repeat_draws_and_restore_the_streams():
    np.random.seed(7)
    torch.manual_seed(7)
    expected_np, expected_torch = np.random.rand(), torch.rand(1)
    np.random.seed(7)
    torch.manual_seed(7)
    with seeded_global_rngs(42):
        first = (np.random.rand(3), torch.rand(3))
    with seeded_global_rngs(42):
        second = (np.random.rand(3), torch.rand(3))
    np.testing.assert_array_equal(first[0], second[0])
    assert torch.equal(first[1], second[1])
    # The surrounding streams continue as if nothing had been drawn.
    assert np.random.rand() == expected_np
    assert torch.equal(torch.rand(1), expected_torch)


def test_augmentation_depends_on_the_draw_seed_only(tiny_root):
    pipeline = [
        dict(type='LoadReIDImage'),
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='RandomPadCrop', padding=4),
        dict(type='RandomErasing', prob=1.0),
        dict(type='PackReIDInputs'),
    ]
    register_all_modules()
    dataset = Market1501Dataset(
        data_root=tiny_root, split='train', pipeline=pipeline)
    a = dataset[DrawIndex(3, 99)]['inputs']
    np.random.rand(5)  # the global stream moves on in between
    b = dataset[DrawIndex(3, 99)]['inputs']
    c = dataset[DrawIndex(3, 100)]['inputs']
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_two_runs_with_one_seed_are_identical(tiny_root, tmp_path):
    """Same seed, augmentation on, 0 and 2 loader workers: same run."""
    labels_a, metrics_a, state_a = _run(
        tiny_config(tiny_root, str(tmp_path / 'a'), augment=True))
    labels_b, metrics_b, state_b = _run(
        tiny_config(tiny_root, str(tmp_path / 'b'), augment=True),
        workers=2)
    assert len(labels_a) == len(labels_b) == 2
    for a, b in zip(labels_a, labels_b):
        assert torch.equal(a, b)
    assert metrics_a == metrics_b
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key


def test_resume_inside_an_epoch_with_augmentation(tiny_root, tmp_path):
    """A run resumed after iteration 6 ends with the uninterrupted weights.

    The resumed process builds its model (drawing random initial weights),
    creates a fresh loader iterator and skips 2 batches; none of that may
    change the augmentation or the model's draws of the remaining steps.
    """
    _, metrics_a, state_a = _run(
        tiny_config(tiny_root, str(tmp_path / 'a'), checkpoint_iters=6,
                    augment=True))
    cfg_b = tiny_config(tiny_root, str(tmp_path / 'b'), augment=True)
    cfg_b.resume = True
    cfg_b.load_from = str(tmp_path / 'a' / 'iter_6.pth')
    torch.manual_seed(12345)  # the resuming process's streams differ
    np.random.seed(12345)
    _, metrics_b, state_b = _run(cfg_b)
    assert metrics_a == metrics_b
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key


def test_iteration_seed_hook_derives_the_streams_from_seed_and_step():
    from types import SimpleNamespace

    from mmreid_rcl.engine.hooks import IterationSeedHook
    hook = IterationSeedHook()

    def draws(seed, step):
        torch.manual_seed(999)
        np.random.seed(999)
        hook.before_train_iter(SimpleNamespace(seed=seed, iter=step), 0)
        return torch.rand(4), np.random.rand(4)

    first, again = draws(0, 7), draws(0, 7)
    assert torch.equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not torch.equal(first[0], draws(0, 8)[0])
    assert not torch.equal(first[0], draws(1, 7)[0])
