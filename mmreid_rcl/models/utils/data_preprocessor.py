"""Batch preprocessing of re-ID images: stack, BGR to RGB, normalise."""
from typing import Optional, Sequence, Union

import torch
from mmengine.model import ImgDataPreprocessor

from mmreid_rcl.registry import MODELS

# ImageNet statistics in RGB order on the 0-255 scale, what torchvision-style
# pretrained backbones expect.
IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)
IMAGENET_STD_RGB = (58.395, 57.12, 57.375)


@MODELS.register_module()
class ReIDDataPreprocessor(ImgDataPreprocessor):
    """Turn a collated batch of re-ID images into a normalised float batch.

    Takes what :class:`PackReIDInputs` and ``pseudo_collate`` produce: a list
    of ``uint8`` (3, H, W) tensors in BGR order and a list of
    :class:`ReIDDataSample`. Returns ``dict(inputs=Tensor(N, 3, H, W),
    data_samples=...)`` on the model's device, the images converted to float,
    reordered to RGB (by default) and normalised as ``(x - mean) / std``.
    The data samples pass through untouched.

    Re-ID models assume one input size, so images of different sizes in one
    batch raise an error instead of being silently padded (the pipeline is
    missing a Resize).

    Args:
        mean (Sequence[float], optional): Per-channel mean, in the channel
            order after the optional BGR to RGB swap. Defaults to the
            ImageNet mean in RGB order, 0-255 scale. None with ``std=None``
            disables normalisation.
        std (Sequence[float], optional): Per-channel standard deviation, same
            order. Defaults to the ImageNet std in RGB order, 0-255 scale.
        bgr_to_rgb (bool): Swap the channels from BGR (OpenCV loading) to RGB
            (what ImageNet weights were trained on). Defaults to True.
        rgb_to_bgr (bool): Swap RGB to BGR. Defaults to False.
        non_blocking (bool): Non-blocking transfer to the device.
            Defaults to False.
    """

    def __init__(self,
                 mean: Optional[Sequence[Union[float, int]]] = (
                     IMAGENET_MEAN_RGB),
                 std: Optional[Sequence[Union[float, int]]] = IMAGENET_STD_RGB,
                 bgr_to_rgb: bool = True,
                 rgb_to_bgr: bool = False,
                 non_blocking: bool = False) -> None:
        if bgr_to_rgb and rgb_to_bgr:
            raise ValueError('ReIDDataPreprocessor bgr_to_rgb and rgb_to_bgr '
                             'cannot both be True')
        if (mean is None) != (std is None):
            raise ValueError('ReIDDataPreprocessor mean and std must both be '
                             f'given or both be None, got mean={mean!r}, '
                             f'std={std!r}')
        if mean is not None:
            for name, value in (('mean', mean), ('std', std)):
                if len(value) not in (1, 3):
                    raise ValueError(
                        f'ReIDDataPreprocessor {name} must have 1 or 3 '
                        f'values, got {value!r}')
            if any(s <= 0 for s in std):
                raise ValueError('ReIDDataPreprocessor std must be positive, '
                                 f'got {std!r}')
            # Float buffers: integer means would make the subtraction
            # integer-typed inside the parent class.
            mean = [float(m) for m in mean]
            std = [float(s) for s in std]
        super().__init__(
            mean=mean,
            std=std,
            pad_size_divisor=1,
            pad_value=0,
            bgr_to_rgb=bgr_to_rgb,
            rgb_to_bgr=rgb_to_bgr,
            non_blocking=non_blocking)

    def forward(self, data: dict, training: bool = False) -> dict:
        """Stack, convert and normalise ``data['inputs']``.

        Args:
            data (dict): ``inputs`` (list of (3, H, W) tensors, or an
                (N, 3, H, W) tensor) and optionally ``data_samples``.
            training (bool): Unused; the same preprocessing serves training
                and testing.

        Returns:
            dict: ``inputs`` of shape (N, 3, H, W), float32, and
            ``data_samples`` as given (None if absent).
        """
        inputs = data.get('inputs') if isinstance(data, dict) else None
        if isinstance(inputs, (list, tuple)):
            if len(inputs) == 0:
                raise ValueError('ReIDDataPreprocessor got an empty batch')
            for img in inputs:
                if not isinstance(img, torch.Tensor) or img.dim() != 3:
                    raise TypeError(
                        'ReIDDataPreprocessor expects (C, H, W) tensors, got '
                        f'{getattr(img, "shape", type(img))}')
            shapes = {tuple(img.shape) for img in inputs}
            if len(shapes) > 1:
                raise ValueError(
                    'ReIDDataPreprocessor needs all images of a batch to '
                    f'have one size, got {sorted(shapes)}; add a Resize to '
                    'the pipeline')
        return super().forward(data, training)
