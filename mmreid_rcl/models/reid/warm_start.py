"""Initialising a model's backbone and neck from another re-ID model."""
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Sequence

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import update_init_info
from torch import nn

from mmreid_rcl.registry import WEIGHT_INITIALIZERS

# How many offending keys an error message lists per kind.
_SHOWN_KEYS = 8


@WEIGHT_INITIALIZERS.register_module(name='WarmStart')
class WarmStartInit:
    """Load chosen sub-modules of a model from a re-ID checkpoint, strictly.

    Used as the model's ``init_cfg``, e.g. to start unsupervised training
    (cluster contrast, RCL) from a supervised model::

        model = dict(
            init_cfg=dict(
                type='WarmStart',
                checkpoint='checkpoints/supervised_mobilenetv2_cuhk03.pth'))

    The checkpoint's ``backbone.*`` and ``neck.*`` weights (``modules``)
    are loaded into the model's modules of those names; everything else in
    it (the identity classifier ``head.*``, a memory) is left out and
    listed in the log. Each loaded module must match exactly: a missing or
    unexpected key or a different shape is an error that names the file,
    since a partly loaded backbone would train silently from a worse start.
    The loaded modules are marked initialised, so their own ``init_cfg``
    (e.g. ImageNet weights of the backbone) is not applied over them. The
    cluster memory and pseudo labels are not in a supervised checkpoint:
    the re-clustering hook builds them before the first epoch.

    This runs where mmengine initialises weights, before a checkpoint is
    resumed: a resumed run (``--resume``) reads the file again but then
    restores every weight from its own checkpoint, so the warm start only
    shapes a fresh run (the file must still exist when resuming).

    Args:
        checkpoint (str): the checkpoint file (a ``state_dict`` of a
            ``SupervisedReID``, ``UnsupervisedReID`` or ``RCL``, or a bare
            state dict with the same keys).
        modules (Sequence[str]): names of the sub-modules to load, in the
            model and in the checkpoint. Defaults to
            ``('backbone', 'neck')``.
        map_location (str): where to load the tensors. Defaults to 'cpu'.
    """

    def __init__(self,
                 checkpoint: str,
                 modules: Sequence[str] = ('backbone', 'neck'),
                 map_location: str = 'cpu') -> None:
        if not isinstance(checkpoint, str) or not checkpoint:
            raise TypeError('WarmStart checkpoint must be a file path, got '
                            f'{checkpoint!r}')
        if isinstance(modules, str) or not modules:
            raise ValueError('WarmStart modules must be a non-empty list of '
                             f'sub-module names, got {modules!r}')
        self.checkpoint = checkpoint
        self.modules = tuple(modules)
        self.map_location = map_location

    def __call__(self, model: nn.Module) -> None:
        state = self.load_state_dict()
        loaded = {}
        for name in self.modules:
            loaded[name] = self._load_module(model, name, state)
        used = tuple(f'{name}.' for name in self.modules)
        skipped = sorted(k for k in state if not k.startswith(used))
        summary = ', '.join(f'{name} ({count} tensors)'
                            for name, count in loaded.items())
        message = f'WarmStart: loaded {summary} from {self.checkpoint}'
        if skipped:
            message += (f'; not loaded: {len(skipped)} tensors ('
                        f'{_shorten(skipped)})')
        print_log(message, logger='current')
        if hasattr(model, '_params_init_info'):
            update_init_info(model, init_info=self._get_init_info())

    def load_state_dict(self) -> Dict[str, torch.Tensor]:
        """The checkpoint's model weights, wrapper prefixes removed.

        Raises:
            FileNotFoundError: the file does not exist.
            ValueError: it holds no state dict.
        """
        from mmengine.runner.checkpoint import _load_checkpoint
        path = self.checkpoint
        if not osp.isfile(path):
            kind = 'a folder' if osp.isdir(path) else 'missing'
            raise FileNotFoundError(
                f'WarmStart checkpoint {path} is {kind}: model.init_cfg.'
                'checkpoint must name a .pth file (train the supervised '
                'model first and copy its final checkpoint there)')
        ckpt = _load_checkpoint(path, map_location=self.map_location)
        state = ckpt.get('state_dict', ckpt) if isinstance(ckpt,
                                                           dict) else None
        if not isinstance(state, dict) or not all(
                isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError(
                f'WarmStart checkpoint {path} holds no state dict of '
                'tensors (expected a checkpoint saved by training, with a '
                '"state_dict" entry)')
        # Weights saved from a DDP-wrapped model carry a "module." prefix.
        return OrderedDict(
            (k[len('module.'):] if k.startswith('module.') else k, v)
            for k, v in state.items())

    def _load_module(self, model: nn.Module, name: str,
                     state: Dict[str, torch.Tensor]) -> int:
        try:
            module = model.get_submodule(name)
        except AttributeError:
            raise ValueError(
                f'WarmStart: the model {type(model).__name__} has no '
                f'sub-module {name!r} to load from {self.checkpoint} '
                f'(modules={list(self.modules)})') from None
        prefix = f'{name}.'
        weights = OrderedDict((k[len(prefix):], v) for k, v in state.items()
                              if k.startswith(prefix))
        expected = module.state_dict()
        problems = self._mismatches(expected, weights, prefix)
        if problems:
            raise ValueError(
                f'WarmStart checkpoint {self.checkpoint} does not fit the '
                f'model\'s {name} ({type(module).__name__}): '
                + '; '.join(problems) + '. The checkpoint must come from a '
                f'model with the same {name} config (type, depth, '
                'channels, pooling).')
        module.load_state_dict(weights, strict=True)
        if isinstance(module, BaseModule):
            # Keep the module's own init_cfg (e.g. ImageNet weights) from
            # overwriting the warm start when its parent initialises it.
            module.is_init = True
        return len(weights)

    @staticmethod
    def _mismatches(expected: Dict[str, torch.Tensor],
                    weights: Dict[str, torch.Tensor],
                    prefix: str) -> List[str]:
        if not weights:
            return [f'the checkpoint has no "{prefix}*" weights']
        problems = []
        missing = [prefix + k for k in expected if k not in weights]
        unexpected = [prefix + k for k in weights if k not in expected]
        shapes = [
            f'{prefix}{k}: checkpoint {tuple(weights[k].shape)}, model '
            f'{tuple(v.shape)}' for k, v in expected.items()
            if k in weights and weights[k].shape != v.shape
        ]
        if missing:
            problems.append(
                f'{len(missing)} missing keys ({_shorten(missing)})')
        if unexpected:
            problems.append(f'{len(unexpected)} unexpected keys '
                            f'({_shorten(unexpected)})')
        if shapes:
            problems.append(f'{len(shapes)} shape mismatches '
                            f'({_shorten(shapes)})')
        return problems

    def _get_init_info(self) -> str:
        return (f'{type(self).__name__}: {", ".join(self.modules)} loaded '
                f'from {self.checkpoint}')


def _shorten(items: List[str]) -> str:
    shown = ', '.join(items[:_SHOWN_KEYS])
    if len(items) > _SHOWN_KEYS:
        shown += f', ... {len(items) - _SHOWN_KEYS} more'
    return shown
