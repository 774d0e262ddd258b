"""Random per-channel gain and brightness: a camera's colour cast."""
from typing import Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmreid_rcl.registry import TRANSFORMS


def _check_range(name: str, value) -> Tuple[float, float]:
    if (not isinstance(value, Sequence) or len(value) != 2
            or not all(isinstance(v, (int, float)) for v in value)
            or not 0 < value[0] <= value[1]):
        raise ValueError(f'RandomColorCast {name} must be a pair (low, high) '
                         f'with 0 < low <= high, got {value!r}')
    return float(value[0]), float(value[1])


@TRANSFORMS.register_module()
class RandomColorCast(BaseTransform):
    """Multiply each colour channel by its own random gain, then the whole
    image by a random brightness factor, and clip to [0, 255].

    Cameras differ in white balance and exposure, and a clustering on
    features that keep those differences groups images by camera instead of
    by person. Training on images whose cast and brightness are redrawn at
    random makes the features indifferent to them.

    The output pixel is ``clip(img[..., c] * gain[c] * brightness, 0, 255)``
    with ``gain[c]`` uniform in ``gain_range`` (drawn per channel) and
    ``brightness`` uniform in ``brightness_range``. Randomness comes from
    NumPy's global RNG, like the mmcv transforms.

    Required keys: ``img`` (H, W, C) uint8. Modified keys: ``img`` (same
    shape, uint8).

    Args:
        gain_range (tuple[float, float]): Range of the per-channel gains.
            Defaults to (0.7, 1.3).
        brightness_range (tuple[float, float]): Range of the brightness
            factor. Defaults to (0.6, 1.45).
        prob (float): Probability of applying the transform. Defaults to 1.0.
    """

    def __init__(self,
                 gain_range: Tuple[float, float] = (0.7, 1.3),
                 brightness_range: Tuple[float, float] = (0.6, 1.45),
                 prob: float = 1.0) -> None:
        self.gain_range = _check_range('gain_range', gain_range)
        self.brightness_range = _check_range('brightness_range',
                                             brightness_range)
        if not 0.0 <= prob <= 1.0:
            raise ValueError(
                f'RandomColorCast prob must be in [0, 1], got {prob!r}')
        self.prob = prob

    @cache_randomness
    def _random_factors(self, channels: int):
        """Whether to apply, and the per-channel factors (gain * bright)."""
        if self.prob < 1.0 and np.random.rand() >= self.prob:
            return None
        gains = np.random.uniform(*self.gain_range, size=channels)
        brightness = np.random.uniform(*self.brightness_range)
        return (gains * brightness).astype(np.float32)

    def transform(self, results: dict) -> dict:
        """Recolour ``results['img']``.

        Args:
            results (dict): Holds ``img`` of shape (H, W, C), uint8.

        Returns:
            dict: ``results`` with the recoloured ``img``.
        """
        img = results['img']
        if img.ndim != 3 or img.dtype != np.uint8:
            raise ValueError(
                'RandomColorCast expects an (H, W, C) uint8 image, got shape '
                f'{img.shape} and dtype {img.dtype}')
        factors = self._random_factors(img.shape[2])
        if factors is None:
            return results
        out = img.astype(np.float32) * factors
        # Round to nearest before the cast, which would truncate.
        results['img'] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(gain_range={self.gain_range}, '
                f'brightness_range={self.brightness_range}, '
                f'prob={self.prob})')
