"""Starting the process group on machines with or without a GPU."""
import datetime
import math
import numbers
import os
from typing import Optional

import torch
import torch.distributed as torch_dist

# How long a collective waits for a stalled rank before failing, in
# seconds, when env_cfg.dist_cfg.timeout is not set. CPU (gloo) runs are
# small enough that ten minutes without progress means a stuck rank; GPU
# (nccl) runs keep the half hour used so far, as a rank may legitimately
# spend long on work the others wait for (re-clustering a large set).
DEFAULT_TIMEOUT_S = dict(gloo=600, nccl=1800)


def collective_timeout_s(timeout=None, backend: str = 'gloo') -> float:
    """The collective timeout in seconds, from ``env_cfg.dist_cfg.timeout``.

    Args:
        timeout (int | float | None): the configured value; None for the
            backend's default (:data:`DEFAULT_TIMEOUT_S`, 1800 for others).
        backend (str): 'gloo', 'nccl', ... (not 'auto').

    Returns:
        float: seconds, positive and finite.

    Raises:
        ValueError: ``timeout`` is not a positive finite number (booleans
            and strings are refused); the message names the setting.
    """
    if timeout is None:
        return float(DEFAULT_TIMEOUT_S.get(backend, 1800))
    if (isinstance(timeout, bool) or not isinstance(timeout, numbers.Real)
            or not math.isfinite(timeout) or timeout <= 0):
        raise ValueError(
            'env_cfg.dist_cfg.timeout must be a positive number of seconds '
            f'(e.g. 600), got {timeout!r}')
    return float(timeout)


def init_process_group_for(launcher: str,
                           backend: str = 'auto',
                           timeout_s: Optional[float] = None) -> None:
    """Initialise the default process group before the Runner starts.

    mmengine's ``init_dist('pytorch')`` calls ``torch.cuda.set_device`` even
    for gloo, which fails on a machine without a GPU. Starting the group
    here makes the Runner skip its own initialisation.

    Args:
        launcher (str): 'none' (nothing to do) or 'pytorch' (torchrun).
        backend (str): 'auto' picks nccl when CUDA is usable, else gloo.
        timeout_s (int | float | None): collective timeout in seconds
            (``env_cfg.dist_cfg.timeout``); None for the backend's default,
            see :func:`collective_timeout_s`. Checked even when
            ``launcher`` is 'none', so a bad value shows up before a
            multi-process launch.
    """
    if backend == 'auto':
        backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    timeout_s = collective_timeout_s(timeout_s, backend)
    if launcher == 'none' or torch_dist.is_initialized():
        return
    if launcher != 'pytorch':
        raise ValueError(f'launcher "{launcher}" is not supported here: use '
                         'none or pytorch (torchrun)')
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if key not in os.environ:
            raise RuntimeError(f'--launcher pytorch needs {key} in the '
                               'environment: start with torchrun or '
                               'tools/dist_train.sh')
    if backend == 'nccl':
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)))
    torch_dist.init_process_group(
        backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
