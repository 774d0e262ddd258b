"""Fitting a config to the machine: optimizer and model wrappers."""
import warnings

import pytest
from mmengine.config import Config, ConfigDict

from mmreid_rcl.utils.config_utils import (fit_model_wrapper_to_device,
                                           fit_optim_wrapper_to_device)

AMP = dict(
    type='AmpOptimWrapper',
    dtype='bfloat16',
    loss_scale='dynamic',
    optimizer=dict(type='Adam', lr=3.5e-4),
    clip_grad=dict(max_norm=5.0),
    accumulative_counts=2)


def test_amp_falls_back_to_float32_without_gpu():
    cfg = ConfigDict(AMP)
    with pytest.warns(UserWarning, match='cfg.py: AmpOptimWrapper needs a '
                      'GPU.*float32 with OptimWrapper'):
        out = fit_optim_wrapper_to_device(
            cfg, has_accelerator=lambda: False, source='cfg.py')
    # Same optimizer, clipping and accumulation; no AMP-only keys.
    assert out == dict(
        type='OptimWrapper',
        optimizer=dict(type='Adam', lr=3.5e-4),
        clip_grad=dict(max_norm=5.0),
        accumulative_counts=2)
    assert cfg['type'] == 'AmpOptimWrapper'  # the input is not changed
    assert isinstance(out, ConfigDict)


def test_wrapper_kept_where_it_can_be_built():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert fit_optim_wrapper_to_device(
            AMP, has_accelerator=lambda: True) is AMP
        plain = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))
        assert fit_optim_wrapper_to_device(
            plain, has_accelerator=lambda: False) is plain
        assert fit_optim_wrapper_to_device(None) is None


def test_fallback_builds_and_steps_on_cpu():
    import torch
    from mmengine.optim import build_optim_wrapper
    model = torch.nn.Linear(3, 1)
    with pytest.warns(UserWarning):
        wrapper = build_optim_wrapper(
            model,
            fit_optim_wrapper_to_device(
                AMP, has_accelerator=lambda: False))
    before = model.weight.detach().clone()
    for _ in range(2):  # accumulative_counts=2: one step
        wrapper.update_params(model(torch.ones(4, 3)).sum())
    assert not torch.equal(before, model.weight)


@pytest.mark.parametrize('launcher,cuda,own,expected', [
    ('none', False, None, None),
    ('pytorch', True, None, None),
    ('pytorch', False, dict(type='Mine'), dict(type='Mine')),
    ('slurm', False, None,
     dict(type='MMDistributedDataParallel', device_ids=None,
          broadcast_buffers=False, find_unused_parameters=True)),
])
def test_model_wrapper_of_cpu_processes(launcher, cuda, own, expected):
    cfg = Config(dict(launcher=launcher, find_unused_parameters=True))
    if own is not None:
        cfg.model_wrapper_cfg = own
    fit_model_wrapper_to_device(cfg, cuda=cuda)
    assert cfg.get('model_wrapper_cfg') == expected
