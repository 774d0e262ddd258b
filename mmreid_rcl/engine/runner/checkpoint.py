"""Loading local checkpoints written by mmengine under torch >= 2.6.

torch.load defaults to ``weights_only=True`` since torch 2.6, but mmengine
checkpoints hold message-hub history buffers and numpy objects, so resuming
fails with an unpickling error. Local files are ones the user points at
(``--resume``, ``load_from``, ``init_cfg``), so they are read in full.
Remote schemes keep mmengine's loaders.
"""
import os.path as osp

import torch
from mmengine.runner.checkpoint import CheckpointLoader


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_local_checkpoint(filename: str, map_location=None):
    """Load a checkpoint from a local path (any pickled content)."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    return torch.load(filename, map_location=map_location, weights_only=False)
