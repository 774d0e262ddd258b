"""Merging command-line overrides (``--cfg-options``) into a config."""
import os
from typing import List, Optional

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
