"""Merging command-line overrides (``--cfg-options``) into a config, and
fitting a config to the machine it runs on."""
import os
import warnings
from typing import Callable, List, Optional

from mmengine.config import Config

# Keys of a dataset dict that hold other datasets (ConcatDataset,
# RepeatDataset, ClassBalancedDataset, ...): no single data_root.
_WRAPPED = ('dataset', 'datasets')


def merge_cfg_options(cfg: Config, options: Optional[dict]) -> List[str]:
    """Merge ``--cfg-options`` into ``cfg``, ``data_root`` included.

    A data set config names its folder once as a top-level ``data_root``
    but each loader's ``dataset.data_root`` is what is read, so overriding
    the top-level one alone would change nothing. A top-level
    ``data_root`` given here is therefore copied into the dataset of every
    ``*_dataloader`` of the config, except those whose
    ``<loader>.dataset.data_root`` is given here too.

    Args:
        cfg (Config): the config, changed in place.
        options (dict | None): parsed ``--cfg-options`` (key=value).

    Returns:
        list[str]: the loaders whose ``dataset.data_root`` was set.

    Raises:
        ValueError: ``data_root`` is not one folder, or a loader's dataset
            cannot take it (a wrapper of other datasets, or no dataset);
            the message names the loader.
    """
    if not options:
        return []
    cfg.merge_from_dict(options)
    if 'data_root' not in options:
        return []
    data_root = options['data_root']
    if not isinstance(data_root, (str, os.PathLike)):
        raise ValueError(
            f'--cfg-options data_root={data_root!r}: expected one folder '
            '(a path), not a list or number')
    data_root = os.fspath(data_root)
    loaders = [
        key for key in cfg.keys()
        if key.endswith('_dataloader') and cfg[key] is not None
    ]
    updated = []
    for key in loaders:
        if f'{key}.dataset.data_root' in options:
            continue
        dataset = cfg[key].get('dataset') if isinstance(cfg[key],
                                                        dict) else None
        if not isinstance(dataset, dict):
            raise ValueError(
                f'--cfg-options data_root={data_root}: {key} has no dataset '
                'dict to take it; set that loader\'s data in the config')
        wrapped = [k for k in _WRAPPED if k in dataset]
        if wrapped:
            raise ValueError(
                f'--cfg-options data_root={data_root}: {key}.dataset '
                f'({dataset.get("type")}) wraps other datasets in '
                f'{key}.dataset.{wrapped[0]}, each with its own data_root; '
                'set those in the config instead')
        dataset['data_root'] = data_root
        updated.append(key)
    if not updated and not any(f'{key}.dataset.data_root' in options
                               for key in loaders):
        raise ValueError(
            f'--cfg-options data_root={data_root}: the config has no '
            '*_dataloader whose dataset could take it')
    return updated


# Optimizer wrappers that need an accelerator, and what stands in for them
# on a machine without one.
_ACCELERATOR_WRAPPERS = {'AmpOptimWrapper': 'OptimWrapper'}
_AMP_ONLY_KEYS = ('loss_scale', 'dtype', 'use_fsdp')


def _accelerator_available() -> bool:
    from mmengine.device import (is_cuda_available, is_mlu_available,
                                 is_musa_available, is_npu_available)
    return (is_cuda_available() or is_npu_available() or is_mlu_available()
            or is_musa_available())


def fit_optim_wrapper_to_device(
        optim_wrapper: Optional[dict],
        has_accelerator: Optional[Callable[[], bool]] = None,
        source: str = 'optim_wrapper') -> Optional[dict]:
    """The optimizer wrapper config to use on this machine.

    The GPU configs train in mixed precision (``AmpOptimWrapper``), which
    mmengine refuses to build without an accelerator. On such a machine
    (a smoke run of a ResNet-50 config on a laptop, a CPU CI job) the
    wrapper falls back to a float32 ``OptimWrapper`` with the same
    optimizer, clipping and accumulation, and says so; elsewhere the
    config is returned unchanged.

    Args:
        optim_wrapper (dict | None): ``cfg.optim_wrapper``; not changed.
        has_accelerator (callable, optional): tells whether an accelerator
            is there; defaults to mmengine's CUDA/NPU/MLU/MUSA checks.
        source (str): where the config comes from, for the warning.

    Returns:
        dict | None: the config to build.
    """
    if not isinstance(optim_wrapper, dict):
        return optim_wrapper
    wrapper_type = optim_wrapper.get('type', 'OptimWrapper')
    if wrapper_type not in _ACCELERATOR_WRAPPERS:
        return optim_wrapper
    check = has_accelerator or _accelerator_available
    if check():
        return optim_wrapper
    fallback = _ACCELERATOR_WRAPPERS[wrapper_type]
    out = {k: v for k, v in optim_wrapper.items() if k not in _AMP_ONLY_KEYS}
    out['type'] = fallback
    warnings.warn(
        f'{source}: {wrapper_type} needs a GPU and none is available; '
        f'training in float32 with {fallback} instead', stacklevel=2)
    return type(optim_wrapper)(out)


def fit_model_wrapper_to_device(cfg: Config,
                                cuda: Optional[bool] = None) -> None:
    """Set the model wrapper of a distributed run on CPU processes.

    mmengine's default wrapper passes the process' GPU as ``device_ids``;
    CPU processes (gloo) need none, and the re-ID models keep their
    buffers (memory bank, pseudo labels) identical across ranks
    themselves, so buffers are not broadcast. A ``model_wrapper_cfg`` of
    the config, a single-process run and a run on GPUs are left alone.

    Args:
        cfg (Config): the config, changed in place; ``cfg.launcher`` says
            whether the run is distributed.
        cuda (bool, optional): whether CUDA is available; asks torch when
            not given.
    """
    if cfg.get('launcher', 'none') == 'none' or \
            cfg.get('model_wrapper_cfg') is not None:
        return
    if cuda is None:
        import torch
        cuda = torch.cuda.is_available()
    if cuda:
        return
    cfg.model_wrapper_cfg = dict(
        type='MMDistributedDataParallel',
        device_ids=None,
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
