"""ResNet for re-ID: torchvision's ResNet without classifier, last stride 1."""
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torchvision.models import resnet as tv_resnet

from mmreid_rcl.registry import MODELS
from .base_backbone import BaseBackbone

# torchvision's builders, so that modules keep torchvision's key names and
# ImageNet checkpoints (``torchvision://resnet50``) load unchanged.
_ARCH_BUILDERS = {
    18: tv_resnet.resnet18,
    34: tv_resnet.resnet34,
    50: tv_resnet.resnet50,
    101: tv_resnet.resnet101,
    152: tv_resnet.resnet152,
}


def _normalise_out_indices(out_indices: Union[int, Sequence[int]],
                           num_stages: int) -> Tuple[int, ...]:
    """Check ``out_indices`` and return it sorted, non-negative, unique."""
    if isinstance(out_indices, int):
        out_indices = (out_indices, )
    if not isinstance(out_indices, (list, tuple)) or not out_indices:
        raise TypeError('out_indices must be an int or a non-empty '
                        f'list/tuple of ints, got {out_indices!r}')
    normalised = set()
    for index in out_indices:
        if not isinstance(index, int) or not (-num_stages <= index <
                                              num_stages):
            raise ValueError(
                f'out_indices must hold stage indices in [{-num_stages}, '
                f'{num_stages - 1}], got {out_indices!r}')
        normalised.add(index % num_stages)
    return tuple(sorted(normalised))


def set_first_block_stride(layer: nn.Sequential, stride: int) -> None:
    """Set the stride of the first block of a ResNet stage.

    torchvision strides the 3x3 conv of a Bottleneck (conv1 of a
    BasicBlock) and the 1x1 conv of the shortcut; every conv of the first
    block with a stride other than 1 is one of those and is changed. No
    dilation is added: re-ID trades the receptive field for a larger map.

    Args:
        layer (nn.Sequential): A ResNet stage (``layer4``).
        stride (int): The new stride.
    """
    for module in layer[0].modules():
        if isinstance(module, nn.Conv2d) and module.stride != (1, 1):
            module.stride = (stride, stride)


@MODELS.register_module()
class ReIDResNet(BaseBackbone):
    """ResNet backbone for re-ID, with torchvision's module names.

    The classifier and the global pooling of torchvision's ResNet are
    removed and, with ``last_stride=1``, the first block of ``layer4`` keeps
    the resolution, so a 256x128 image gives a 16x8 map instead of 8x4.

    ImageNet weights load with
    ``init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')``
    (its ``fc.*`` keys are skipped; every other key matches).

    Args:
        depth (int): 18, 34, 50, 101 or 152. Defaults to 50.
        last_stride (int): Stride of the first block of ``layer4``, 1 or 2.
            Defaults to 1.
        out_indices (int or Sequence[int]): Stages whose outputs are
            returned, 0..3 for ``layer1``..``layer4``. Defaults to (3, ).
        frozen_stages (int): Freeze the stem (0) and ``layer1`` ..
            ``layer{frozen_stages}``; -1 freezes nothing. Defaults to -1.
        norm_eval (bool): Keep BatchNorm layers in eval mode while
            training. Defaults to False.
        init_cfg (dict or list[dict], optional): Initialisation config.
            Without it the weights keep torchvision's random init.

    Attributes:
        out_channels (int): Channels of the last returned map (2048 for
            depth >= 50 with ``out_indices=(3, )``, 512 for 18/34).
        stage_channels (tuple[int]): Output channels of the four stages.
    """

    ignored_checkpoint_prefixes = ('fc.', )

    def __init__(self,
                 depth: int = 50,
                 last_stride: int = 1,
                 out_indices: Union[int, Sequence[int]] = (3, ),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[dict, Sequence[dict]]] = None):
        super().__init__(
            frozen_stages=frozen_stages,
            norm_eval=norm_eval,
            init_cfg=init_cfg)
        if depth not in _ARCH_BUILDERS:
            raise ValueError(f'depth must be one of {sorted(_ARCH_BUILDERS)}'
                             f' for {type(self).__name__}, got {depth!r}')
        if last_stride not in (1, 2):
            raise ValueError(
                f'last_stride must be 1 or 2, got {last_stride!r}')
        self.depth = depth
        self.last_stride = last_stride
        self.out_indices = _normalise_out_indices(out_indices, 4)

        net = _ARCH_BUILDERS[depth](weights=None)
        self.conv1 = net.conv1
        self.bn1 = net.bn1
        self.relu = net.relu
        self.maxpool = net.maxpool
        self.layer1 = net.layer1
        self.layer2 = net.layer2
        self.layer3 = net.layer3
        self.layer4 = net.layer4
        # net.avgpool and net.fc are dropped with ``net``.

        if last_stride != 2:
            set_first_block_stride(self.layer4, last_stride)

        expansion = 4 if depth >= 50 else 1
        self.stage_channels = tuple(64 * 2**i * expansion for i in range(4))
        self.out_channels = self.stage_channels[self.out_indices[-1]]

        self._check_frozen_stages()
        self._freeze_stages()

    @property
    def num_freezable_stages(self) -> int:
        return 5  # stem + four stages

    def _stage_modules(self, stage: int) -> Sequence[nn.Module]:
        if stage == 0:
            return (self.conv1, self.bn1)
        return (getattr(self, f'layer{stage}'), )

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Compute the feature maps.

        Args:
            x (torch.Tensor): Images of shape (N, 3, H, W).

        Returns:
            tuple[torch.Tensor]: One map per entry of ``out_indices``; the
            last stage gives (N, out_channels, H / 16, W / 16) with
            ``last_stride=1`` and (N, out_channels, H / 32, W / 32) with 2.
        """
        if x.dim() != 4:
            raise ValueError(f'{type(self).__name__} expects images of shape '
                             f'(N, C, H, W), got {tuple(x.shape)}')
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs = []
        for i in range(4):
            x = getattr(self, f'layer{i + 1}')(x)
            if i in self.out_indices:
                outs.append(x)
            if i == self.out_indices[-1]:
                break  # later stages would be computed for nothing
        return tuple(outs)
