"""Zero-pad then random-crop back to size: a small random translation."""
from numbers import Number
from typing import Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmreid_rcl.registry import TRANSFORMS
from mmreid_rcl.utils.validation import check_int, is_real


def _check_pad_val(pad_val) -> Union[Number, Tuple[Number, ...]]:
    if is_real(pad_val):
        return pad_val
    if isinstance(pad_val, Sequence) and len(pad_val) > 0 and all(
            is_real(v) for v in pad_val):
        return tuple(pad_val)
    raise TypeError('RandomPadCrop pad_val must be a number or a sequence of '
                    f'numbers (one per channel), got {pad_val!r}')


@TRANSFORMS.register_module()
class RandomPadCrop(BaseTransform):
    """Pad every border by ``padding`` pixels, then crop a random window of
    the input's size.

    This is the usual re-ID translation augmentation (pad 10, crop back to
    256x128). The result equals the input shifted by ``(dy, dx)`` with
    ``dy, dx`` uniform in ``[-padding, padding]``, the uncovered border set to
    ``pad_val``. It is computed by copying the overlapping window directly,
    without building the padded image.

    Randomness comes from NumPy's global RNG, like the mmcv transforms:
    mmengine seeds it per dataloader worker, so runs with a fixed seed are
    reproducible.

    Required keys: ``img``. Modified keys: ``img`` (same shape and dtype).

    Args:
        padding (int): Pixels added on each border before cropping.
            Defaults to 10.
        prob (float): Probability of applying the transform. Defaults to 1.0.
        pad_val (number | Sequence[number]): Value of the padded pixels, one
            number or one per channel. Defaults to 0.
    """

    def __init__(self,
                 padding: int = 10,
                 prob: float = 1.0,
                 pad_val: Union[Number, Sequence[Number]] = 0) -> None:
        check_int(padding, 'RandomPadCrop padding', 0)
        if not 0.0 <= prob <= 1.0:
            raise ValueError(
                f'RandomPadCrop prob must be in [0, 1], got {prob!r}')
        self.padding = int(padding)
        self.prob = prob
        self.pad_val = _check_pad_val(pad_val)

    @cache_randomness
    def _random_shift(self) -> Tuple[bool, int, int]:
        """Whether to apply, and the shift ``(dy, dx)`` of the content."""
        if self.prob < 1.0 and np.random.rand() >= self.prob:
            return False, 0, 0
        dy, dx = np.random.randint(-self.padding, self.padding + 1, size=2)
        return True, int(dy), int(dx)

    def transform(self, results: dict) -> dict:
        """Shift ``results['img']`` randomly.

        Args:
            results (dict): Holds ``img`` of shape (H, W) or (H, W, C).

        Returns:
            dict: ``results`` with the shifted ``img``.
        """
        img = results['img']
        apply, dy, dx = self._random_shift()
        if not apply or (dy == 0 and dx == 0):
            return results
        h, w = img.shape[:2]
        channels = img.shape[2] if img.ndim == 3 else 1
        if isinstance(self.pad_val, tuple) and len(
                self.pad_val) not in (1, channels):
            raise ValueError(
                f'RandomPadCrop pad_val has {len(self.pad_val)} values but '
                f'the image has {channels} channels')
        out = np.empty_like(img)
        out[...] = np.asarray(self.pad_val, dtype=img.dtype).reshape(
            (-1, ) if img.ndim == 3 else ())
        # Output pixel (y, x) shows input pixel (y - dy, x - dx); copy the
        # part of the input that stays inside the window.
        src_y0, src_y1 = max(0, -dy), min(h, h - dy)
        src_x0, src_x1 = max(0, -dx), min(w, w - dx)
        if src_y0 < src_y1 and src_x0 < src_x1:
            out[src_y0 + dy:src_y1 + dy, src_x0 + dx:src_x1 + dx] = \
                img[src_y0:src_y1, src_x0:src_x1]
        results['img'] = out
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(padding={self.padding}, '
                f'prob={self.prob}, pad_val={self.pad_val})')
