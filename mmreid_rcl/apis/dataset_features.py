"""A checked model and the cluster loader of a config, and the features
of a whole data set (``extract_dataset_features``, the re-clustering's)."""
import torch.nn as nn
from mmengine.config import Config
from torch.utils.data import DataLoader

from mmreid_rcl.engine.dataset_features import extract_dataset_features
from mmreid_rcl.engine.runner.state_dict_check import load_checkpoint_checked
from mmreid_rcl.registry import MODELS

__all__ = [
    'extract_dataset_features', 'build_checked_model',
    'build_cluster_dataloader'
]


def build_checked_model(cfg: Config, checkpoint: str) -> nn.Module:
    """The config's model with the weights of ``checkpoint``.

    Args:
        cfg (Config): a config whose ``model`` is built (the registries
            must be set up, see ``register_all_modules``).
        checkpoint (str): the checkpoint file.

    Returns:
        nn.Module: the model, on the CPU.

    Raises:
        CheckpointMismatchError: the checkpoint does not fit the model
            (see :func:`load_checkpoint_checked`).
    """
    model = MODELS.build(cfg.model)
    load_checkpoint_checked(model, checkpoint)
    return model


def build_cluster_dataloader(cfg: Config) -> DataLoader:
    """The loader of the config's ``cluster_dataloader``: the train split
    with the test pipeline, in dataset order, as the re-clustering reads
    it.

    Raises:
        ValueError: the config has no ``cluster_dataloader``.
    """
    from mmengine.runner import Runner

    if cfg.get('cluster_dataloader') is None:
        raise ValueError('the config has no cluster_dataloader (the train '
                         'split with the test pipeline) to extract from')
    return Runner.build_dataloader(cfg.cluster_dataloader)
