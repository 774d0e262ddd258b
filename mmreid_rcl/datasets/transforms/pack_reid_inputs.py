"""Packing of a transformed sample into model inputs and a data sample."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from mmreid_rcl.registry import TRANSFORMS
from mmreid_rcl.structures import ReIDDataSample


def _as_int(value, key: str) -> int:
    # Plain ints keep the data samples cheap to collate and to pickle.
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, np.integer)):
        raise TypeError(f'PackReIDInputs expects "{key}" to be an int, got '
                        f'{value!r}')
    return int(value)


@TRANSFORMS.register_module()
class PackReIDInputs(BaseTransform):
    """Pack the image into a CHW tensor and the labels into a
    :class:`ReIDDataSample`.

    The image keeps its dtype (``uint8`` normally) and channel order (BGR);
    conversion to float, channel swap and normalisation happen batched in
    :class:`ReIDDataPreprocessor`, which is faster than per sample.

    Required keys: ``img``.

    Read keys: ``person_id`` (missing: ``-1``, for unlabeled images),
    ``camera_id`` (missing: ``-1``, unknown camera), ``sample_idx`` (set only
    when present), ``is_query`` (missing: False) and the ``meta_keys``
    that are present.

    Output: ``dict(inputs=Tensor(C, H, W), data_samples=ReIDDataSample)``.

    Args:
        meta_keys (Sequence[str]): Keys of ``results`` copied into the data
            sample's meta information when present.
            Defaults to ``('img_path', 'ori_shape', 'img_shape', 'flip',
            'flip_direction')``.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('img_path', 'ori_shape',
                                             'img_shape', 'flip',
                                             'flip_direction')) -> None:
        if isinstance(meta_keys, str) or not all(
                isinstance(k, str) for k in meta_keys):
            raise TypeError('PackReIDInputs meta_keys must be a sequence of '
                            f'strings, got {meta_keys!r}')
        self.meta_keys = tuple(meta_keys)

    @staticmethod
    def _to_chw_tensor(img: np.ndarray) -> torch.Tensor:
        if not isinstance(img, np.ndarray) or img.ndim not in (2, 3):
            raise TypeError('PackReIDInputs expects "img" as an (H, W) or '
                            '(H, W, C) numpy array, got '
                            f'{getattr(img, "shape", type(img))}')
        if img.ndim == 2:
            img = img[..., None]
        # The transposed view is not contiguous; collate and the model want
        # a plain memory layout.
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))

    def transform(self, results: dict) -> dict:
        """Pack ``results``.

        Args:
            results (dict): The output of the previous transforms.

        Returns:
            dict: ``inputs`` (Tensor of shape (C, H, W)) and
            ``data_samples`` (:class:`ReIDDataSample`).
        """
        if 'img' not in results:
            raise KeyError('PackReIDInputs needs "img" in the results (is '
                           'LoadReIDImage in the pipeline?), got keys '
                           f'{sorted(results)}')
        metainfo = {k: results[k] for k in self.meta_keys if k in results}
        metainfo.update(
            person_id=_as_int(results.get('person_id', -1), 'person_id'),
            camera_id=_as_int(results.get('camera_id', -1), 'camera_id'),
            is_query=bool(results.get('is_query', False)))
        if 'sample_idx' in results:
            metainfo['sample_idx'] = _as_int(results['sample_idx'],
                                             'sample_idx')
        data_sample = ReIDDataSample(metainfo=metainfo)
        return dict(
            inputs=self._to_chw_tensor(results['img']),
            data_samples=data_sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
