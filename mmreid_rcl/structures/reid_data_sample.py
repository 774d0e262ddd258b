"""The data sample that flows through re-ID pipelines, models and metrics."""
from typing import Optional, Union

import numpy as np
import torch
from mmengine.structures import BaseDataElement

_Number = Union[int, np.integer]


def _as_int(value, name: str) -> int:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f'{name} must be a single integer, got a tensor '
                             f'of shape {tuple(value.shape)}')
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, np.integer)):
        raise TypeError(f'{name} must be an int, got {type(value).__name__}')
    return int(value)


class ReIDDataSample(BaseDataElement):
    """One image of a re-ID dataset.

    Meta information (set once, read everywhere):

    - ``person_id`` (int): the true identity. Unsupervised training never
      reads it; the metrics and clustering diagnostics do.
    - ``camera_id`` (int): the camera, 0-based.
    - ``sample_idx`` (int): the index of the image in its dataset.
    - ``is_query`` (bool): whether the image is a query (test split).
    - ``img_path`` (str), ``ori_shape``, ``img_shape``: image facts.

    Data fields (may change during a run):

    - ``pseudo_label`` (int): the cluster the image is assigned to in the
      current epoch, ``-1`` for an outlier.
    - ``features`` (Tensor): the image's feature vector, shape (D, ).
    """

    def set_identity(self, person_id: _Number, camera_id: _Number,
                     sample_idx: Optional[_Number] = None,
                     is_query: Optional[bool] = None) -> 'ReIDDataSample':
        """Set the meta information of the image; returns ``self``.

        Meta fields are read as attributes (``sample.person_id``) but are
        set through ``set_metainfo`` or this method: mmengine forbids
        assigning a meta field like a data field.
        """
        meta = dict(
            person_id=_as_int(person_id, 'person_id'),
            camera_id=_as_int(camera_id, 'camera_id'))
        if sample_idx is not None:
            meta['sample_idx'] = _as_int(sample_idx, 'sample_idx')
        if is_query is not None:
            meta['is_query'] = bool(is_query)
        self.set_metainfo(meta)
        return self

    @property
    def pseudo_label(self) -> int:
        return self._pseudo_label

    @pseudo_label.setter
    def pseudo_label(self, value: _Number) -> None:
        self.set_field(
            _as_int(value, 'pseudo_label'), '_pseudo_label', dtype=int)

    @pseudo_label.deleter
    def pseudo_label(self) -> None:
        del self._pseudo_label

    @property
    def features(self) -> torch.Tensor:
        return self._features

    @features.setter
    def features(self, value: Union[torch.Tensor, np.ndarray]) -> None:
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value)
        if not isinstance(value, torch.Tensor) or value.dim() != 1:
            raise ValueError('features must be a 1-D tensor or array, got '
                             f'{getattr(value, "shape", type(value))}')
        self.set_field(value, '_features', dtype=torch.Tensor)

    @features.deleter
    def features(self) -> None:
        del self._features

    def get_pseudo_label(self, default: Optional[int] = None):
        """The pseudo label, or ``default`` when none was assigned."""
        return getattr(self, '_pseudo_label', default)
