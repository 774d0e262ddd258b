"""Starting the process group on machines with or without a GPU."""
import datetime
import math
import os
import re
from typing import Dict, Mapping, Optional

import torch
import torch.distributed as torch_dist

from .validation import is_real

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
    if not is_real(timeout) or not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(
            'env_cfg.dist_cfg.timeout must be a positive number of seconds '
            f'(e.g. 600), got {timeout!r}')
    return float(timeout)


#: The slurm variables ``--launcher slurm`` reads (srun sets them).
SLURM_REQUIRED = ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID')
#: Where the node list is read, first found wins: the nodes of this step
#: (srun), then of the job.
SLURM_NODELIST_KEYS = ('SLURM_STEP_NODELIST', 'SLURM_JOB_NODELIST',
                       'SLURM_NODELIST')
DEFAULT_MASTER_PORT = 29500


def first_slurm_host(nodelist: str) -> str:
    """The first host name of a slurm node list.

    What ``scontrol show hostname NODELIST | head -n1`` prints, without
    calling scontrol: ``'gpu[03-05,9],cpu1'`` -> ``'gpu03'``,
    ``'rack[1-2]-n[07-08]'`` -> ``'rack1-n07'``, ``'a1,b2'`` -> ``'a1'``.

    Args:
        nodelist (str): A slurm node list (``SLURM_JOB_NODELIST``).

    Returns:
        str: The first host.

    Raises:
        ValueError: ``nodelist`` is empty or its brackets do not match.
    """
    text = nodelist.strip()
    depth = 0
    for i, char in enumerate(text):  # the first top-level comma ends it
        depth += {'[': 1, ']': -1}.get(char, 0)
        if char == ',' and depth == 0:
            text = text[:i]
            break
    if not text or text.count('[') != text.count(']') or re.search(
            r'\[[^\]]*\[', text):
        raise ValueError(f'cannot read the slurm node list {nodelist!r}: '
                         'expected e.g. "node[01-04],gpu7"')
    # In each bracket the first entry, and of a range its start.
    return re.sub(r'\[([^\],-]*)[^\]]*\]', r'\1', text)


def slurm_dist_env(environ: Mapping[str, str]) -> Dict[str, str]:
    """The torch.distributed variables of a process started by srun.

    One task per GPU: ``RANK`` is ``SLURM_PROCID``, ``WORLD_SIZE``
    ``SLURM_NTASKS``, ``LOCAL_RANK`` ``SLURM_LOCALID``. ``MASTER_ADDR`` and
    ``MASTER_PORT`` are kept when set, else the first host of the node list
    and 29500.

    Args:
        environ (Mapping[str, str]): The environment (``os.environ``); not
            modified.

    Returns:
        dict: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
        ``MASTER_PORT``, as strings.

    Raises:
        RuntimeError: A slurm variable is missing or not a number; the
            message names it.
    """
    missing = [key for key in SLURM_REQUIRED if key not in environ]
    if 'MASTER_ADDR' not in environ and not any(
            key in environ for key in SLURM_NODELIST_KEYS):
        missing.append('SLURM_JOB_NODELIST')
    if missing:
        raise RuntimeError(
            f'--launcher slurm needs {", ".join(missing)} in the '
            'environment: start the processes with srun (see '
            'tools/slurm_train.sh)')
    values = {}
    for key in SLURM_REQUIRED:
        try:
            values[key] = int(environ[key])
        except ValueError:
            raise RuntimeError(f'--launcher slurm: {key} must be an '
                               f'integer, got {environ[key]!r}') from None
    rank, world, local = (values[k] for k in SLURM_REQUIRED)
    if not 0 <= rank < world or local < 0:
        raise RuntimeError(
            f'--launcher slurm: SLURM_PROCID={rank}, SLURM_NTASKS={world} '
            f'and SLURM_LOCALID={local} do not describe a task of the job')
    addr = environ.get('MASTER_ADDR')
    if not addr:
        key = next(k for k in SLURM_NODELIST_KEYS if k in environ)
        try:
            addr = first_slurm_host(environ[key])
        except ValueError as err:
            raise RuntimeError(f'--launcher slurm: {key}: {err}') from None
    return dict(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(local),
        MASTER_ADDR=addr,
        MASTER_PORT=str(environ.get('MASTER_PORT', DEFAULT_MASTER_PORT)))


def init_process_group_for(launcher: str,
                           backend: str = 'auto',
                           timeout_s: Optional[float] = None) -> None:
    """Initialise the default process group before the Runner starts.

    mmengine's ``init_dist('pytorch')`` calls ``torch.cuda.set_device`` even
    for gloo, which fails on a machine without a GPU. Starting the group
    here makes the Runner skip its own initialisation.

    Args:
        launcher (str): 'none' (nothing to do), 'pytorch' (torchrun) or
            'slurm' (srun: the torch.distributed variables are set from
            slurm's, see :func:`slurm_dist_env`, then as 'pytorch').
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
    if launcher == 'slurm':
        os.environ.update(slurm_dist_env(os.environ))
        launcher = 'pytorch'
    if launcher != 'pytorch':
        raise ValueError(f'launcher "{launcher}" is not supported here: use '
                         'none, pytorch (torchrun) or slurm (srun)')
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if key not in os.environ:
            raise RuntimeError(f'--launcher pytorch needs {key} in the '
                               'environment: start with torchrun or '
                               'tools/dist_train.sh')
    if backend == 'nccl':
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)))
    torch_dist.init_process_group(
        backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
