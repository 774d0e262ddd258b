"""Saving and loading extracted features with the files they come from.

Two formats, chosen by the file extension:

- ``.npz``: ``features`` (N, D) float32, ``filenames`` (N, ) str and,
  when known, ``pids``, ``camids`` (int64) and ``is_query`` (bool), plus
  ``config`` and ``checkpoint`` (0-d str) describing the model.
- ``.npy``: the features only, with the file names one a line in a
  sidecar text file of the same name ending in ``.txt``.
"""
import os
import os.path as osp
import zipfile
from typing import Dict, List, Optional, Sequence

import numpy as np

from mmreid_rcl.utils.output_files import check_outputs

FEATURE_EXTENSIONS = ('.npz', '.npy')
_OPTIONAL_KEYS = ('pids', 'camids', 'is_query')


def feature_output_paths(path: str) -> List[str]:
    """The files :func:`save_features` writes for ``path``.

    Args:
        path (str): A ``.npz`` or ``.npy`` file name.

    Returns:
        list[str]: ``[path]`` for ``.npz``; ``[path, sidecar .txt]`` for
        ``.npy``.
    """
    root, ext = osp.splitext(path)
    if ext.lower() not in FEATURE_EXTENSIONS:
        raise ValueError(f'feature file {path!r} must end in .npz (features, '
                         'file names and labels) or .npy (features only, '
                         f'file names in a .txt beside it), got {ext!r}')
    if ext.lower() == '.npy':
        return [path, root + '.txt']
    return [path]


def check_feature_output(path: str,
                         overwrite: bool = False,
                         hint: Optional[str] = None) -> List[str]:
    """Raise when ``path`` would overwrite files and ``overwrite`` is off.

    Args:
        path (str): A ``.npz`` or ``.npy`` file name.
        overwrite (bool): Existing files may be replaced. Defaults to False.
        hint (str, optional): How to allow it, ending the message (see
            :func:`mmreid_rcl.utils.output_files.check_outputs`).

    Returns:
        list[str]: The files that will be written.

    Raises:
        FileExistsError: They exist and ``overwrite`` is off.
    """
    return check_outputs(feature_output_paths(path), overwrite, hint)


def save_features(path: str,
                  features: np.ndarray,
                  filenames: Sequence[str],
                  pids: Optional[Sequence[int]] = None,
                  camids: Optional[Sequence[int]] = None,
                  is_query: Optional[Sequence[bool]] = None,
                  config: str = '',
                  checkpoint: str = '',
                  overwrite: bool = False) -> List[str]:
    """Write features and their file names (see the module docstring).

    Files are written under a temporary name and renamed, so an
    interrupted run leaves no truncated output.

    Args:
        path (str): Output, ``.npz`` or ``.npy``.
        features (np.ndarray): Shape (N, D).
        filenames (Sequence[str]): N file names, in feature order.
        pids, camids (Sequence[int], optional): N identities / cameras
            (``.npz`` only).
        is_query (Sequence[bool], optional): N query flags (``.npz`` only).
        config (str): The config the features were made with.
        checkpoint (str): The checkpoint they were made with.
        overwrite (bool): Replace existing files. Defaults to False.

    Returns:
        list[str]: The files written.
    """
    targets = check_feature_output(
        path, overwrite, hint='choose another output or pass overwrite=True')
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise ValueError(f'features must be 2-D (N, D), got shape '
                         f'{features.shape}')
    num = features.shape[0]
    filenames = [str(f) for f in filenames]
    if len(filenames) != num:
        raise ValueError(f'{len(filenames)} file names for {num} features')
    extra = {}
    for key, values, dtype in (('pids', pids, np.int64),
                               ('camids', camids, np.int64),
                               ('is_query', is_query, bool)):
        if values is None:
            continue
        values = np.asarray(values, dtype=dtype)
        if values.shape != (num, ):
            raise ValueError(f'{key} must have shape ({num}, ), got '
                             f'{values.shape}')
        extra[key] = values
    parent = osp.dirname(osp.abspath(path))
    os.makedirs(parent, exist_ok=True)
    if targets[0].lower().endswith('.npz'):
        tmp = path + '.tmp'
        with open(tmp, 'wb') as f:
            np.savez(
                f,
                features=features,
                filenames=np.array(filenames, dtype=str),
                config=np.array(str(config)),
                checkpoint=np.array(str(checkpoint)),
                **extra)
        os.replace(tmp, path)
        return targets
    if extra:
        raise ValueError(f'{path!r} is a .npy file, which holds the features '
                         f'only: write {sorted(extra)} to a .npz instead')
    npy_tmp, txt_tmp = targets[0] + '.tmp', targets[1] + '.tmp'
    with open(npy_tmp, 'wb') as f:
        np.save(f, features)
    with open(txt_tmp, 'w', encoding='utf-8') as f:
        f.writelines(name + '\n' for name in filenames)
    os.replace(npy_tmp, targets[0])
    os.replace(txt_tmp, targets[1])
    return targets


def load_features(path: str) -> Dict[str, np.ndarray]:
    """Read what :func:`save_features` wrote.

    Args:
        path (str): A ``.npz`` or ``.npy`` feature file.

    Returns:
        dict: ``features`` (N, D) float32 and ``filenames`` (list of str,
        None for a ``.npy`` without its sidecar), plus ``pids``,
        ``camids``, ``is_query``, ``config`` and ``checkpoint`` when stored.
    """
    targets = feature_output_paths(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'feature file {path!r} does not exist')
    try:
        out = _read_feature_file(path, targets)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        if isinstance(e, ValueError) and repr(path) in str(e):
            raise  # already names the file
        raise ValueError(f'feature file {path!r} cannot be read ({e}); was '
                         'it written by tools/extract_features.py?') from e
    features = np.asarray(out['features'], dtype=np.float32)
    if features.ndim != 2:
        raise ValueError(f'features in {path!r} must be 2-D (N, D), got '
                         f'shape {features.shape}')
    if out['filenames'] is not None and len(
            out['filenames']) != features.shape[0]:
        raise ValueError(f'{path!r}: {len(out["filenames"])} file names for '
                         f'{features.shape[0]} features')
    out['features'] = features
    return out


def _read_feature_file(path: str, targets) -> Dict[str, object]:
    """The arrays of a feature file, unchecked (see :func:`load_features`).
    """
    if path.lower().endswith('.npy'):
        features = np.load(path)
        filenames = None
        if osp.isfile(targets[1]):
            with open(targets[1], encoding='utf-8') as f:
                filenames = f.read().splitlines()
        out = dict(features=features, filenames=filenames)
    else:
        with np.load(path) as data:
            for key in ('features', 'filenames'):
                if key not in data:
                    raise KeyError(f'{path!r} holds no {key!r} (keys: '
                                   f'{sorted(data.files)}); was it written '
                                   'by tools/extract_features.py?')
            out = dict(
                features=data['features'],
                filenames=[str(f) for f in data['filenames']])
            for key in _OPTIONAL_KEYS:
                if key in data:
                    out[key] = data[key]
            for key in ('config', 'checkpoint'):
                if key in data:
                    out[key] = str(data[key])
    return out
