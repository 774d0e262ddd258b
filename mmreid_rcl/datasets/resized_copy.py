"""A smaller copy of an image data set: every image resized and re-encoded.

Used to carry a real data set where only a few tens of MB fit (a remote
machine that receives the working tree, a CI cache): at the network's
input size the pipeline's own resize is then the identity, so only the
re-encoding changes the pixels.
"""
import os
import os.path as osp
import shutil
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Dict, Optional, Sequence, Tuple

import cv2

from .base_reid_dataset import IMG_EXTENSIONS


def _check_arguments(src_root: str, dst_root: str, size: Tuple[int, int],
                     quality: int,
                     folders: Optional[Sequence[str]]) -> Tuple[int, int]:
    """Check :func:`write_resized_copy`'s arguments; ``(height, width)``."""
    height, width = (int(v) for v in size)
    if height < 1 or width < 1:
        raise ValueError(f'size must be two positive ints (height, width), '
                         f'got {size!r}')
    if not 1 <= int(quality) <= 100:
        raise ValueError(f'quality must be in 1..100, got {quality!r}')
    if not osp.isdir(src_root):
        raise FileNotFoundError(f'data set folder {src_root!r} does not '
                                'exist')
    if osp.exists(dst_root):
        raise FileExistsError(f'{dst_root!r} exists; choose a new folder')
    for top in [''] if folders is None else list(folders):
        if not osp.isdir(osp.join(src_root, top)):
            raise FileNotFoundError(
                f'folder {top!r} not found under {src_root!r}')
    return height, width


def _list_files(src_root: str,
                folders: Optional[Sequence[str]]) -> Tuple[list, list]:
    """Images and other files to copy, relative to ``src_root``, sorted.

    With ``folders``, the files directly in ``src_root`` come first among
    the other files.
    """
    tops = [''] if folders is None else list(folders)
    images, others = [], []
    if folders is not None:
        others = [
            name for name in sorted(os.listdir(src_root))
            if osp.isfile(osp.join(src_root, name))
        ]
    for top in tops:
        for dirpath, dirnames, filenames in os.walk(osp.join(src_root, top)):
            dirnames.sort()
            rel_dir = osp.relpath(dirpath, src_root)
            for name in sorted(filenames):
                rel = osp.normpath(osp.join(rel_dir, name))
                if name.lower().endswith(IMG_EXTENSIONS):
                    images.append(rel)
                else:
                    others.append(rel)
    return images, others


def _copy_resized_image(src_root: str, dst_root: str, rel: str,
                        height: int, width: int, quality: int) -> int:
    """Resize and re-encode one image; the number of bytes written."""
    src = osp.join(src_root, rel)
    img = cv2.imread(src, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f'cannot read image {src!r}')
    img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    ext = osp.splitext(rel)[1].lower()
    params = ([cv2.IMWRITE_JPEG_QUALITY, int(quality)]
              if ext in ('.jpg', '.jpeg') else [])
    ok, buf = cv2.imencode(ext, img, params)
    if not ok:
        raise ValueError(f'cannot encode {src!r} as {ext}')
    dst = osp.join(dst_root, rel)
    os.makedirs(osp.dirname(dst), exist_ok=True)
    with open(dst, 'wb') as f:
        f.write(buf.tobytes())
    return len(buf)


def write_resized_copy(src_root: str,
                       dst_root: str,
                       size: Tuple[int, int],
                       quality: int = 90,
                       folders: Optional[Sequence[str]] = None,
                       num_threads: int = 4) -> Dict[str, int]:
    """Copy a data set folder with every image resized to ``size``.

    Folder structure and file names are kept; images (by extension) are
    resized with area interpolation (the right filter for down-scaling)
    and re-encoded in their own format (JPEG at ``quality``); other files
    (split lists, read-mes) are copied as they are.

    Args:
        src_root (str): The data set's root folder.
        dst_root (str): Where the copy goes; must not exist yet.
        size (tuple[int, int]): ``(height, width)`` of every image.
        quality (int): JPEG quality, 1-100. Defaults to 90.
        folders (Sequence[str], optional): Sub-folders of ``src_root`` to
            copy (with the files directly in ``src_root``). None copies
            everything. Defaults to None.
        num_threads (int): Images decoded and encoded at once.
            Defaults to 4.

    Returns:
        dict: ``images``, ``other_files`` and ``bytes`` written.

    Raises:
        FileNotFoundError: ``src_root`` or one of ``folders`` is missing.
        FileExistsError: ``dst_root`` exists.
        ValueError: Bad ``size`` or ``quality``, or an unreadable image
            (named).
    """
    height, width = _check_arguments(src_root, dst_root, size, quality,
                                     folders)
    images, others = _list_files(src_root, folders)
    os.makedirs(dst_root)
    with ThreadPoolExecutor(max(1, int(num_threads))) as pool:
        written = sum(
            pool.map(
                partial(_copy_resized_image, src_root, dst_root,
                        height=height, width=width, quality=quality),
                images))
    for rel in others:
        dst = osp.join(dst_root, rel)
        os.makedirs(osp.dirname(dst) or dst_root, exist_ok=True)
        shutil.copyfile(osp.join(src_root, rel), dst)
        written += osp.getsize(dst)
    return dict(images=len(images), other_files=len(others), bytes=written)
