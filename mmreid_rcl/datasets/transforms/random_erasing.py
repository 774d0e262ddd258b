"""Random erasing of one rectangle, the re-ID occlusion augmentation."""
import math
from numbers import Number
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmreid_rcl.registry import TRANSFORMS
from mmreid_rcl.utils.validation import check_int, is_real

# ImageNet mean in BGR order on the 0-255 scale, the order LoadReIDImage
# produces; erasing runs before normalisation.
IMAGENET_MEAN_BGR = (103.53, 116.28, 123.675)
# The pixel values (BGR, 0-255) that the ImageNet normalisation maps to
# (0.485, 0.456, 0.406) in RGB order: the fill of the published
# cluster-contrast recipe, which erases after normalising and writes the
# ImageNet mean itself into the normalised tensor (a light grey, not the
# mean colour, which normalises to 0). 255 * (m * s + m) per channel.
NORMALISED_MEAN_FILL_BGR = (126.82, 142.33, 152.0)
_ASPECT_SAMPLING = ('log_uniform', 'uniform')


def _check_range(value, name: str, low: float, high: float) -> tuple:
    if not (isinstance(value, Sequence) and len(value) == 2
            and all(is_real(v) for v in value)):
        raise TypeError(f'RandomErasing {name} must be a pair of numbers '
                        f'(min, max), got {value!r}')
    lo, hi = float(value[0]), float(value[1])
    if not low < lo <= hi <= high:
        raise ValueError(f'RandomErasing {name} must satisfy {low} < min <= '
                         f'max <= {high}, got {value!r}')
    return lo, hi


@TRANSFORMS.register_module()
class RandomErasing(BaseTransform):
    """Replace one random rectangle of the image by a fill value.

    The rectangle's area is uniform in ``area_range`` times the image area
    and its aspect ratio (height / width) is log-uniform in
    ``aspect_range``, so tall and wide boxes are equally likely
    (``aspect_sampling='log_uniform'``), or uniform in it (``'uniform'``,
    the published Random Erasing and cluster-contrast code: with the default
    range, 77 % of the draws are taller than wide). Sizes are
    rounded to whole pixels and a draw whose rounded box does not fit the
    image or leaves the area range is redrawn, up to ``max_attempts``
    times; if none fits, the image is left as it is.

    It runs on the ``uint8`` image before normalisation, hence the fill
    values are on the 0-255 scale and in the image's channel order (BGR).

    Randomness comes from NumPy's global RNG, like the mmcv transforms:
    mmengine seeds it per dataloader worker, so runs with a fixed seed are
    reproducible.

    Required keys: ``img``. Modified keys: ``img`` (same shape and dtype).

    Args:
        prob (float): Probability of erasing. Defaults to 0.5.
        area_range (tuple[float, float]): Range of the erased fraction of
            the image area. Defaults to (0.02, 0.4).
        aspect_range (tuple[float, float]): Range of the box's height /
            width. Defaults to (0.3, 3.33).
        fill (str | int | Sequence[int]): ``'mean'`` fills with ``mean``,
            ``'random'`` with uniform noise in [0, 255] per pixel and channel,
            a number or one number per channel fills with that constant.
            Defaults to ``'mean'``.
        mean (Sequence[float]): Per-channel fill of ``fill='mean'``.
            Defaults to the ImageNet mean in BGR order, 0-255 scale.
        max_attempts (int): Draws tried before giving up. Defaults to 100.
        aspect_sampling (str): ``'log_uniform'`` or ``'uniform'`` (see
            above). Defaults to ``'log_uniform'``.

    The published cluster-contrast recipe's erasing is
    ``RandomErasing(fill=NORMALISED_MEAN_FILL_BGR, aspect_sampling=
    'uniform')`` (its boxes must also be strictly smaller than the image,
    which changes nothing at 128 x 64 and above with the default ranges).
    """

    def __init__(self,
                 prob: float = 0.5,
                 area_range: Tuple[float, float] = (0.02, 0.4),
                 aspect_range: Tuple[float, float] = (0.3, 3.33),
                 fill: Union[str, Number, Sequence[Number]] = 'mean',
                 mean: Sequence[float] = IMAGENET_MEAN_BGR,
                 max_attempts: int = 100,
                 aspect_sampling: str = 'log_uniform') -> None:
        if not (is_real(prob) and 0.0 <= prob <= 1.0):
            raise ValueError(
                f'RandomErasing prob must be in [0, 1], got {prob!r}')
        self.prob = float(prob)
        self.area_range = _check_range(area_range, 'area_range', 0.0, 1.0)
        self.aspect_range = _check_range(aspect_range, 'aspect_range', 0.0,
                                         math.inf)
        if isinstance(fill, str):
            if fill not in ('mean', 'random'):
                raise ValueError('RandomErasing fill must be "mean", '
                                 f'"random", or numbers, got {fill!r}')
        elif is_real(fill):
            fill = (fill, )
        elif not (isinstance(fill, Sequence) and len(fill) > 0
                  and all(is_real(v) for v in fill)):
            raise TypeError('RandomErasing fill must be "mean", "random", a '
                            f'number or a sequence of numbers, got {fill!r}')
        else:
            fill = tuple(fill)
        self.fill = fill
        if not (isinstance(mean, Sequence) and len(mean) > 0
                and all(is_real(v) for v in mean)):
            raise TypeError('RandomErasing mean must be a sequence of '
                            f'numbers, got {mean!r}')
        self.mean = tuple(float(v) for v in mean)
        self.max_attempts = check_int(max_attempts,
                                      'RandomErasing max_attempts')
        if aspect_sampling not in _ASPECT_SAMPLING:
            raise ValueError('RandomErasing aspect_sampling must be one of '
                             f'{_ASPECT_SAMPLING}, got {aspect_sampling!r}')
        self.aspect_sampling = aspect_sampling

    @cache_randomness
    def _random_box(self, height: int,
                    width: int) -> Optional[Tuple[int, int, int, int]]:
        """A box ``(top, left, box_h, box_w)``, or None to leave the image."""
        if self.prob < 1.0 and np.random.rand() >= self.prob:
            return None
        img_area = height * width
        min_area = self.area_range[0] * img_area
        max_area = self.area_range[1] * img_area
        log_aspect = (math.log(self.aspect_range[0]),
                      math.log(self.aspect_range[1]))
        uniform = self.aspect_sampling == 'uniform'
        for _ in range(self.max_attempts):
            area = np.random.uniform(min_area, max_area)
            aspect = (np.random.uniform(*self.aspect_range) if uniform else
                      math.exp(np.random.uniform(*log_aspect)))
            box_h = int(round(math.sqrt(area * aspect)))
            box_w = int(round(math.sqrt(area / aspect)))
            # Rounding can move the area out of range; redraw then, so that
            # the documented bounds hold exactly.
            if not (1 <= box_h <= height and 1 <= box_w <= width
                    and min_area <= box_h * box_w <= max_area):
                continue
            top = np.random.randint(0, height - box_h + 1)
            left = np.random.randint(0, width - box_w + 1)
            return int(top), int(left), box_h, box_w
        return None

    def _fill_values(self, img: np.ndarray, box_h: int,
                     box_w: int) -> np.ndarray:
        channels = img.shape[2] if img.ndim == 3 else 1
        if self.fill == 'random':
            shape = (box_h, box_w) + img.shape[2:]
            return np.random.randint(0, 256, size=shape).astype(img.dtype)
        values = self.mean if self.fill == 'mean' else self.fill
        if len(values) not in (1, channels):
            setting = 'mean' if self.fill == 'mean' else 'fill'
            raise ValueError(
                f'RandomErasing {setting} has {len(values)} values but the '
                f'image has {channels} channels')
        values = np.asarray(values, dtype=np.float64)
        if np.issubdtype(img.dtype, np.integer):
            info = np.iinfo(img.dtype)
            values = np.clip(np.round(values), info.min, info.max)
        return values.astype(img.dtype).reshape((-1, ) if img.ndim ==
                                                3 else ())

    def transform(self, results: dict) -> dict:
        """Erase one rectangle of ``results['img']`` with probability
        ``prob``.

        Args:
            results (dict): Holds ``img`` of shape (H, W) or (H, W, C).

        Returns:
            dict: ``results`` with the erased ``img`` (a new array; the input
            array is not modified).
        """
        img = results['img']
        box = self._random_box(*img.shape[:2])
        if box is None:
            return results
        top, left, box_h, box_w = box
        img = img.copy()
        img[top:top + box_h, left:left + box_w] = self._fill_values(
            img, box_h, box_w)
        results['img'] = img
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, '
                f'area_range={self.area_range}, '
                f'aspect_range={self.aspect_range}, fill={self.fill!r}, '
                f'mean={self.mean}, max_attempts={self.max_attempts}, '
                f'aspect_sampling={self.aspect_sampling!r})')
