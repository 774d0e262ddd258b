"""Loading of one re-ID image from disk (or any mmengine file backend)."""
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine import fileio

from mmreid_rcl.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadReIDImage(BaseTransform):
    """Load the image at ``results['img_path']`` as a BGR ``uint8`` array.

    Unlike a plain ``mmcv.imread``, a file that is missing, empty or cannot
    be decoded raises at once with the path in the message; otherwise the
    failure surfaces later as a ``None`` inside some unrelated transform.

    Required keys: ``img_path``.

    Added keys: ``img`` (H, W, 3), ``img_shape`` and ``ori_shape`` (both
    ``(H, W)``).

    Args:
        to_float32 (bool): Convert the image to ``float32`` after loading.
            Defaults to False (keep ``uint8``, which the augmentations and
            :class:`PackReIDInputs` expect).
        imdecode_backend (str): Decoding backend of
            :func:`mmcv.imfrombytes`. Defaults to ``'cv2'``.
        backend_args (dict, optional): Arguments of the mmengine file
            backend (e.g. for reading from object storage). Defaults to None,
            which reads local files.
    """

    def __init__(self,
                 to_float32: bool = False,
                 imdecode_backend: str = 'cv2',
                 backend_args: Optional[dict] = None) -> None:
        self.to_float32 = to_float32
        self.imdecode_backend = imdecode_backend
        self.backend_args = None if backend_args is None else dict(
            backend_args)

    def transform(self, results: dict) -> dict:
        """Read the image of ``results['img_path']`` into ``results``.

        Args:
            results (dict): A data_info dict of a re-ID dataset.

        Returns:
            dict: ``results`` with ``img``, ``img_shape`` and ``ori_shape``.

        Raises:
            KeyError: ``img_path`` is not in ``results``.
            FileNotFoundError: The file does not exist.
            ValueError: The file is empty or not a decodable image.
        """
        if 'img_path' not in results:
            raise KeyError('LoadReIDImage needs "img_path" in the data info, '
                           f'got keys {sorted(results)}')
        path = results['img_path']
        try:
            content = fileio.get(path, backend_args=self.backend_args)
        except FileNotFoundError as e:
            raise FileNotFoundError(f'image file not found: {path}') from e
        except IsADirectoryError as e:
            raise FileNotFoundError(
                f'image path is a directory, not a file: {path}') from e
        if len(content) == 0:
            raise ValueError(f'image file is empty (0 bytes): {path}')
        try:
            img = mmcv.imfrombytes(
                content, flag='color', channel_order='bgr',
                backend=self.imdecode_backend)
        except Exception as e:
            raise ValueError(f'image file could not be decoded ({e}): '
                             f'{path}') from e
        # cv2 returns None for bytes it does not recognise as an image.
        if img is None or img.size == 0:
            raise ValueError(
                f'image file could not be decoded (corrupt or not an image, '
                f'{len(content)} bytes): {path}')
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(to_float32={self.to_float32}, '
                f"imdecode_backend='{self.imdecode_backend}', "
                f'backend_args={self.backend_args})')
