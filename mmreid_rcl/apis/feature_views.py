"""Features of real images in several views: more rows of a real feature
distribution than a data set has images (benchmarks of the re-clustering
at the sizes of larger data sets).

View 0 of an image is the image itself, view 1 its mirror image, and
every later view a seeded random crop of 80 to 100 % of its height and
width, mirrored with probability 1/2 and resized back to the image's size
(the augmentations training applies). Rows come view by view: all images
in view 0, then all in view 1, and so on, until ``num`` rows.
"""
import os.path as osp
from typing import Callable, List, Sequence, Tuple

import cv2
import numpy as np

# Share of the height and width a crop view keeps, at least.
MIN_CROP = 0.8


def image_view(image: np.ndarray, view: int,
               rng: np.random.Generator) -> np.ndarray:
    """View ``view`` of a (H, W, C) image (see the module docstring);
    ``rng`` draws the crop and mirror of views 2 and up."""
    if view < 0:
        raise ValueError(f'view must be >= 0, got {view}')
    if view == 0:
        return image
    if view == 1:
        return np.ascontiguousarray(image[:, ::-1])
    h, w = image.shape[:2]
    ch = max(1, int(round(h * rng.uniform(MIN_CROP, 1.0))))
    cw = max(1, int(round(w * rng.uniform(MIN_CROP, 1.0))))
    top = int(rng.integers(h - ch + 1))
    left = int(rng.integers(w - cw + 1))
    crop = image[top:top + ch, left:left + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(
        np.ascontiguousarray(crop), (w, h), interpolation=cv2.INTER_LINEAR)


def view_plan(num_images: int, num: int) -> List[Tuple[int, int]]:
    """The (view, image index) of each of ``num`` rows: view by view,
    images in order within a view."""
    if num_images < 1 or num < 1:
        raise ValueError('view_plan needs at least one image and one row, '
                         f'got {num_images} images and num={num}')
    return [(r // num_images, r % num_images) for r in range(num)]


def extract_view_features(extract: Callable[[List[np.ndarray]], np.ndarray],
                          files: Sequence[str],
                          num: int,
                          seed: int = 0,
                          chunk: int = 1024,
                          progress: bool = True
                          ) -> Tuple[np.ndarray, List[str]]:
    """Features of ``num`` rows of views of ``files``.

    Args:
        extract (callable): features (R, D) of a list of BGR ``uint8``
            images, e.g. ``ReIDInferencer(...).extract`` with
            ``progress=False``.
        files (sequence of str): the images.
        num (int): rows wanted; more than ``len(files)`` adds views.
        seed (int): seed of the crop views: the same ``files``, ``num``
            and seed give the same views.
        chunk (int): images held in memory at once.
        progress (bool): print a line per chunk.

    Returns:
        tuple: features (num, D) float32 and the name of every row,
        ``'<file>#<view>'``.
    """
    plan = view_plan(len(files), num)
    rng = np.random.default_rng(seed)
    # Draw every row's crop in plan order, whatever the chunking.
    crops = [np.random.default_rng(s) for s in rng.integers(
        2**63, size=len(plan))]
    parts, names = [], []
    for start in range(0, len(plan), chunk):
        images = []
        for row in range(start, min(start + chunk, len(plan))):
            view, index = plan[row]
            image = cv2.imread(files[index], cv2.IMREAD_COLOR)
            if image is None and not osp.isfile(files[index]):
                raise FileNotFoundError(
                    f'the image {files[index]!r} does not exist')
            if image is None:
                raise ValueError(f'cannot decode the image {files[index]!r} '
                                 '(corrupt, or not an image)')
            images.append(image_view(image, view, crops[row]))
            names.append(f'{files[index]}#{view}')
        parts.append(np.asarray(extract(images), dtype=np.float32))
        if progress:
            print(f'views: {len(names)} / {num} rows', flush=True)
    return np.concatenate(parts), names
