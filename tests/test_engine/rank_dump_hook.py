"""A hook for the distributed test: each rank saves its state at the end."""
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmreid_rcl.registry import HOOKS


@HOOKS.register_module()
class RankStateDumpHook(Hook):
    """Save pseudo labels, prototypes and sampled indices of every rank."""

    def __init__(self):
        self.batches = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.batches.append(
            [s.sample_idx for s in data_batch['data_samples']])

    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        torch.save(
            dict(
                pseudo_labels=model.pseudo_labels.clone(),
                prototypes=model.head.memory.prototypes.clone(),
                backbone_w=next(model.backbone.parameters()).detach().clone(),
                batches=self.batches,
                world_size=torch.distributed.get_world_size()
                if torch.distributed.is_initialized() else 1),
            osp.join(runner.work_dir, f'rank{get_rank()}_state.pth'))
