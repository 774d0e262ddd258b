"""Behaviour shared by the re-ID backbones: freezing, norm_eval, loading."""
from typing import Optional, Sequence, Tuple, Union

from mmengine.model import BaseModule
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class BaseBackbone(BaseModule):
    """Base class of the re-ID backbones.

    A subclass builds its stages, lists the modules each frozen stage covers
    in :meth:`_stage_modules` and sets ``out_channels``, the channel count of
    the last feature map it returns (the neck and head read it).

    Checkpoints of ImageNet classifiers carry the 1000-way classifier that
    re-ID drops; keys under :attr:`ignored_checkpoint_prefixes` are therefore
    neither loaded nor reported as unexpected, so loading such a checkpoint
    (``torchvision://resnet50``) is silent when every other key matches.

    Args:
        frozen_stages (int): Stages ``0 .. frozen_stages`` are put in eval
            mode and their parameters stop requiring grad; stage 0 is the
            stem. -1 freezes nothing. Defaults to -1.
        norm_eval (bool): Keep every BatchNorm layer in eval mode (running
            statistics frozen) while training. Defaults to False.
        init_cfg (dict or list[dict], optional): Initialisation config.
    """

    #: Checkpoint key prefixes (relative to this module) to skip on loading.
    ignored_checkpoint_prefixes: Tuple[str, ...] = ()

    out_channels: int

    def __init__(self,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[dict, Sequence[dict]]] = None):
        super().__init__(init_cfg=init_cfg)
        if not isinstance(frozen_stages, int) or isinstance(
                frozen_stages, bool):
            raise TypeError('frozen_stages must be an int, got '
                            f'{type(frozen_stages).__name__}')
        self.frozen_stages = frozen_stages
        self.norm_eval = bool(norm_eval)

    def _stage_modules(self, stage: int) -> Sequence[nn.Module]:
        """Modules of stage ``stage`` (0 is the stem)."""
        raise NotImplementedError

    @property
    def num_freezable_stages(self) -> int:
        """Number of stages ``frozen_stages`` can cover, the stem included."""
        raise NotImplementedError

    def _check_frozen_stages(self) -> None:
        upper = self.num_freezable_stages - 1
        if not -1 <= self.frozen_stages <= upper:
            raise ValueError(
                f'frozen_stages must be in [-1, {upper}] for '
                f'{type(self).__name__}, got {self.frozen_stages}')

    def _freeze_stages(self) -> None:
        for stage in range(self.frozen_stages + 1):
            for module in self._stage_modules(stage):
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False

    def train(self, mode: bool = True) -> 'BaseBackbone':
        """Set train mode, then re-apply frozen stages and ``norm_eval``."""
        super().train(mode)
        # nn.Module.train flips every child back to training, which would
        # update the running statistics of frozen stages.
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
        ignored = tuple(prefix + p for p in self.ignored_checkpoint_prefixes)
        if ignored:
            # In place: the caller owns the list and reports what is left.
            unexpected_keys[:] = [
                key for key in unexpected_keys if not key.startswith(ignored)
            ]
