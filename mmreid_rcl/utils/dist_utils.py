"""Starting the process group on machines with or without a GPU."""
import os

import torch
import torch.distributed as torch_dist


def init_process_group_for(launcher: str, backend: str = 'auto',
                           timeout_s: int = 1800) -> None:
    """Initialise the default process group before the Runner starts.

    mmengine's ``init_dist('pytorch')`` calls ``torch.cuda.set_device`` even
    for gloo, which fails on a machine without a GPU. Starting the group
    here makes the Runner skip its own initialisation.

    Args:
        launcher (str): 'none' (nothing to do) or 'pytorch' (torchrun).
        backend (str): 'auto' picks nccl when CUDA is usable, else gloo.
        timeout_s (int): collective timeout in seconds.
    """
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
    if backend == 'auto':
        backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    if backend == 'nccl':
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)))
    import datetime
    torch_dist.init_process_group(
        backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
