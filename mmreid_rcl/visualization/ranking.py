"""Pictures of ranked retrieval results: a query, then its top-k.

Each row of the picture is one query: the query image, a separator, then
its nearest gallery images from left to right. A gallery image is framed
in green when it shows the query's identity, in red when it does not and
in grey when identities are unknown; its distance is written under it.

Images are given as file paths or as (H, W, 3) ``uint8`` arrays in BGR
order (what ``LoadReIDImage`` and ``cv2.imread`` produce). The picture is
returned in **RGB** order, what matplotlib and PIL expect;
:func:`save_ranking` writes it to a PNG.
"""
import math
import os
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

ImageLike = Union[str, np.ndarray]

#: Frame colours, RGB.
MATCH_COLOR = (0, 200, 0)
MISMATCH_COLOR = (220, 0, 0)
UNKNOWN_COLOR = (150, 150, 150)
QUERY_COLOR = (30, 30, 30)
BACKGROUND = (255, 255, 255)
TEXT_COLOR = (0, 0, 0)

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_LINE_HEIGHT = 13
_FONT_SCALE = 0.36


def _read_rgb(image: ImageLike) -> np.ndarray:
    if isinstance(image, str):
        bgr = cv2.imread(image, cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(
                f'cannot read the image {image!r} (missing or not an image)')
    elif isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError('image arrays must be (H, W, 3) uint8 BGR, got '
                             f'shape {image.shape} and dtype {image.dtype}')
        bgr = image
    else:
        raise TypeError('an image must be a path or a numpy array, got '
                        f'{type(image).__name__}')
    return np.ascontiguousarray(bgr[..., ::-1])


def _text_width(text: str, scale: float) -> int:
    return cv2.getTextSize(text, _FONT, scale, 1)[0][0]


def _put_text(canvas: np.ndarray, text: str, center_x: int, top: int,
              max_width: int) -> None:
    """Write ``text`` centred on ``center_x``, shrunk to ``max_width``."""
    scale = _FONT_SCALE
    width = _text_width(text, scale)
    if width > max_width:
        scale *= max_width / width
        width = _text_width(text, scale)
    baseline = top + _LINE_HEIGHT - 3
    cv2.putText(canvas, text, (int(center_x - width / 2), baseline), _FONT,
                scale, TEXT_COLOR, 1, cv2.LINE_AA)


def _wrap(text: str, max_width: int, scale: float) -> List[str]:
    lines: List[str] = []
    for paragraph in text.split('\n'):
        line = ''
        for word in paragraph.split(' '):
            candidate = f'{line} {word}' if line else word
            if line and _text_width(candidate, scale) > max_width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def _frame_color(match: Optional[bool]) -> Tuple[int, int, int]:
    if match is None:
        return UNKNOWN_COLOR
    return MATCH_COLOR if match else MISMATCH_COLOR


def _format_distance(value) -> str:
    if value is None:
        return ''
    value = float(value)
    return '' if not math.isfinite(value) else f'{value:.3f}'


def _as_rows(values, num_rows: int, name: str) -> List[Sequence]:
    if values is None:
        return [None] * num_rows
    if len(values) != num_rows:
        raise ValueError(f'{name} must have one row per query ({num_rows}), '
                         f'got {len(values)}')
    return list(values)


@dataclass(frozen=True)
class _Grid:
    """Pixel sizes of the picture's tiles (an image in its frame)."""
    cell_w: int
    cell_h: int
    border: int
    gap: int

    @property
    def tile_w(self) -> int:
        return self.cell_w + 2 * self.border

    @property
    def tile_h(self) -> int:
        return self.cell_h + 2 * self.border

    @property
    def separator(self) -> int:
        """Space between the query and its first gallery image."""
        return 3 * self.gap


def _check_ranking_inputs(query_images, gallery_images, distances, matches,
                          query_labels, cell_size, border, gap):
    """Check :func:`draw_ranking`'s arguments; fill in the defaults.

    Returns:
        tuple: ``distances`` and ``matches`` as one entry (maybe None) per
        query, the query labels, and the :class:`_Grid`.
    """
    num_q = len(query_images)
    if num_q == 0:
        raise ValueError('draw_ranking needs at least one query')
    if len(gallery_images) != num_q:
        raise ValueError(f'gallery_images must have one row per query '
                         f'({num_q}), got {len(gallery_images)}')
    distances = _as_rows(distances, num_q, 'distances')
    matches = _as_rows(matches, num_q, 'matches')
    query_labels = ['query'] * num_q if query_labels is None else list(
        query_labels)
    if len(query_labels) != num_q:
        raise ValueError(f'query_labels must have {num_q} entries, got '
                         f'{len(query_labels)}')
    cell_w, cell_h = (int(v) for v in cell_size)
    if cell_w < 8 or cell_h < 8 or border < 0 or gap < 0:
        raise ValueError('cell_size must be at least (8, 8) and border, gap '
                         f'non-negative, got {cell_size}, {border}, {gap}')
    return distances, matches, query_labels, _Grid(cell_w, cell_h, border,
                                                   gap)


def _draw_title(canvas: np.ndarray, title_lines: List[str],
                gap: int) -> None:
    for i, line in enumerate(title_lines):
        baseline = gap + (i + 1) * (_LINE_HEIGHT + 4) - 4
        cv2.putText(canvas, line, (gap, baseline), _FONT, _FONT_SCALE * 1.2,
                    TEXT_COLOR, 1, cv2.LINE_AA)


def _paste(canvas: np.ndarray, grid: _Grid, image: ImageLike, left: int,
           top: int, color: Tuple[int, int, int]) -> None:
    """Draw ``image`` in a frame of ``color`` with its corner at (left, top).
    """
    canvas[top:top + grid.tile_h, left:left + grid.tile_w] = color
    rgb = cv2.resize(
        _read_rgb(image), (grid.cell_w, grid.cell_h),
        interpolation=cv2.INTER_AREA)
    canvas[top + grid.border:top + grid.border + grid.cell_h,
           left + grid.border:left + grid.border + grid.cell_w] = rgb


def _draw_query_row(canvas: np.ndarray, grid: _Grid, top: int, q: int,
                    query_image: ImageLike, query_label: str,
                    gallery_row: Sequence[Optional[ImageLike]],
                    distance_row: Optional[Sequence[float]],
                    match_row: Optional[Sequence[Optional[bool]]]) -> None:
    """Draw query ``q``, its caption, the separator and its ranked gallery.
    """
    gap, tile_w, tile_h = grid.gap, grid.tile_w, grid.tile_h
    _paste(canvas, grid, query_image, gap, top, QUERY_COLOR)
    for line_no, line in enumerate(str(query_label).split('\n')):
        _put_text(canvas, line, gap + tile_w // 2,
                  top + tile_h + 1 + line_no * _LINE_HEIGHT, tile_w + gap)
    sep_x = gap + tile_w + grid.separator // 2
    canvas[top:top + tile_h, sep_x - 1:sep_x + 1] = UNKNOWN_COLOR
    row_dist = _as_rows(distance_row, len(gallery_row),
                        f'distances[{q}]') if distance_row is not None \
        else [None] * len(gallery_row)
    row_match = _as_rows(match_row, len(gallery_row),
                         f'matches[{q}]') if match_row is not None \
        else [None] * len(gallery_row)
    for j, image in enumerate(gallery_row):
        if image is None:
            continue
        left = gap + tile_w + grid.separator + j * (tile_w + gap)
        match = row_match[j]
        _paste(canvas, grid, image, left, top,
               _frame_color(None if match is None else bool(match)))
        _put_text(canvas, _format_distance(row_dist[j]), left + tile_w // 2,
                  top + tile_h + 1, tile_w + gap)


def draw_ranking(query_images: Sequence[ImageLike],
                 gallery_images: Sequence[Sequence[Optional[ImageLike]]],
                 distances: Optional[Sequence[Sequence[float]]] = None,
                 matches: Optional[Sequence[Sequence[Optional[bool]]]] = None,
                 query_labels: Optional[Sequence[str]] = None,
                 title: Optional[str] = None,
                 cell_size: Tuple[int, int] = (64, 128),
                 border: int = 3,
                 gap: int = 4) -> np.ndarray:
    """Draw the ranked gallery of each query, one query per row.

    Args:
        query_images (Sequence[str | np.ndarray]): Q query images.
        gallery_images (Sequence[Sequence]): For each query its ranked
            gallery images, best first; rows may be shorter than others and
            None entries leave an empty slot.
        distances (Sequence[Sequence[float]], optional): Distances, the
            shape of ``gallery_images``; written under each image
            (non-finite values are not written).
        matches (Sequence[Sequence[bool | None]], optional): Whether each
            gallery image shows the query's identity: green frame for True,
            red for False, grey for None. None: all unknown (grey).
        query_labels (Sequence[str], optional): Caption under each query
            (``\\n`` separates lines). Defaults to ``'query'``.
        title (str, optional): Text above the rows, wrapped to the width.
        cell_size (tuple[int, int]): (width, height) every image is resized
            to. Defaults to (64, 128).
        border (int): Frame width in pixels. Defaults to 3.
        gap (int): Space between images in pixels. Defaults to 4.

    Returns:
        np.ndarray: The picture, (H, W, 3) ``uint8`` in RGB order.
    """
    distances, matches, query_labels, grid = _check_ranking_inputs(
        query_images, gallery_images, distances, matches, query_labels,
        cell_size, border, gap)
    num_q = len(query_images)
    num_cols = max([len(row) for row in gallery_images] + [0])
    label_lines = max(len(str(label).split('\n')) for label in query_labels)
    caption_h = _LINE_HEIGHT * max(label_lines, 1) + 2
    row_h = grid.tile_h + caption_h + gap
    width = gap + grid.tile_w + grid.separator + num_cols * (grid.tile_w +
                                                             gap)
    title_lines = _wrap(title, width - 2 * gap,
                        _FONT_SCALE * 1.2) if title else []
    title_h = (_LINE_HEIGHT + 4) * len(title_lines) + (gap if title else 0)
    height = title_h + gap + num_q * row_h
    canvas = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    _draw_title(canvas, title_lines, gap)
    for q in range(num_q):
        _draw_query_row(canvas, grid, title_h + gap + q * row_h, q,
                        query_images[q], query_labels[q], gallery_images[q],
                        distances[q], matches[q])
    return canvas


def save_ranking(path: str,
                 image: np.ndarray,
                 colors: Optional[int] = None) -> str:
    """Write a picture from :func:`draw_ranking` (RGB) to a PNG file.

    Args:
        path (str): Output file; must end in ``.png``. Missing parent
            folders are created.
        image (np.ndarray): (H, W, 3) ``uint8`` RGB picture.
        colors (int, optional): Reduce the picture to a palette of this
            many colours (2 to 256, PIL's fast octree quantiser), which
            makes the file two to three times smaller for documentation.
            None (default) keeps full colour.

    Returns:
        str: ``path``.
    """
    if not path.lower().endswith('.png'):
        raise ValueError(f'ranking pictures are written as PNG: {path!r} '
                         'must end in .png')
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError('image must be (H, W, 3) uint8 RGB, got shape '
                         f'{image.shape} and dtype {image.dtype}')
    if colors is not None and not 2 <= int(colors) <= 256:
        raise ValueError(f'colors must be in [2, 256], got {colors!r}')
    parent = osp.dirname(osp.abspath(path))
    os.makedirs(parent, exist_ok=True)
    if colors is not None:
        from PIL import Image
        Image.fromarray(image).quantize(
            colors=int(colors),
            method=Image.Quantize.FASTOCTREE).save(path, optimize=True)
        return path
    if not cv2.imwrite(path, np.ascontiguousarray(image[..., ::-1]),
                       [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f'could not write the picture to {path!r}')
    return path
