"""Interface of the pseudo-label generators (clustering algorithms)."""
from abc import ABCMeta, abstractmethod
from typing import NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .jaccard_distance import as_unit_features


class Neighbours(NamedTuple):
    """The kNN lists of every sample, searched before the clustering
    (:meth:`BaseLabelGenerator.search_neighbours`)."""
    #: similarities (N, k) float32, most similar first.
    sims: np.ndarray
    #: indices (N, k) int64.
    indices: np.ndarray
    #: how the search went (``knn_method`` ...), with its ``time_knn``.
    info: dict


class BaseLabelGenerator(metaclass=ABCMeta):
    """Turns the features of the train split into pseudo labels.

    A subclass implements :meth:`generate` and registers itself in
    ``mmreid_rcl.registry.LABEL_GENERATORS``, so that a config picks it by
    ``type=``; :meth:`__call__` validates and normalises the features and
    returns the labels, optionally with diagnostics. A subclass that knows
    its memory needs overrides :meth:`check_memory`, which runs before
    anything is allocated. :meth:`describe` and :meth:`explain_few_clusters`
    word the messages about the generator in its own terms.

    A generator built on kNN lists may let the ranks of a distributed run
    share their search: it sets :attr:`shards_knn`, implements
    :meth:`search_neighbours` (called on every rank) and takes the result
    as ``neighbours=`` of :meth:`generate` (rank 0 finishes the
    clustering).
    """

    #: Whether :meth:`generate` reads the images' cameras (a generator
    #: that does takes ``cameras=`` in :meth:`generate`).
    uses_cameras = False
    #: Whether :meth:`search_neighbours` shards the kNN search over the
    #: ranks and :meth:`generate` takes its result (``neighbours=``).
    shards_knn = False

    def __call__(
        self,
        features: Union[np.ndarray, torch.Tensor],
        return_info: bool = False,
        cameras: Optional[Sequence[int]] = None,
        neighbours: Optional[Neighbours] = None
    ) -> Union[np.ndarray, Tuple[np.ndarray, dict]]:
        """Cluster ``features``.

        Args:
            features (np.ndarray | torch.Tensor): features (N, D), one row
                per image, L2-normalised here if they are not already.
            return_info (bool): also return the generator's diagnostics.
            cameras (sequence of int, optional): the camera of every image,
                passed to a generator that ``uses_cameras``, ignored by
                others.
            neighbours (Neighbours, optional): the kNN lists
                :meth:`search_neighbours` gave for these features and
                cameras (generators that :attr:`shards_knn` only); searched
                here when not given.

        Returns:
            np.ndarray | tuple[np.ndarray, dict]: int64 labels (N,), -1 for
            outliers, clusters numbered 0.. in the order of their smallest
            member; with ``return_info``, also a dict of diagnostics (at
            least ``num_clusters``, ``num_outliers`` and ``time_total`` in
            seconds).
        """
        self.check_memory(features)
        x = as_unit_features(features)
        kwargs = {}
        if self.uses_cameras:
            kwargs['cameras'] = self._camera_array(x, cameras)
        if neighbours is not None:
            if not self.shards_knn:
                raise TypeError(f'{type(self).__name__} searches its own '
                                'neighbours: pass no neighbours')
            kwargs['neighbours'] = neighbours
        labels, info = self.generate(x, **kwargs)
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (x.shape[0], ):
            raise RuntimeError(
                f'{type(self).__name__} returned labels of shape '
                f'{labels.shape} for {x.shape[0]} samples')
        info.setdefault('num_clusters', int(labels.max(initial=-1)) + 1)
        info.setdefault('num_outliers', int((labels < 0).sum()))
        return (labels, info) if return_info else labels

    def search_neighbours(self,
                          features: Union[np.ndarray, torch.Tensor],
                          cameras: Optional[Sequence[int]] = None
                          ) -> Neighbours:
        """The kNN lists :meth:`generate` needs, the search sharded over
        the ranks of a distributed run (a collective: every rank calls it
        with the same features), for ``neighbours=`` of :meth:`__call__`
        (generators that :attr:`shards_knn` only).

        Args:
            features (np.ndarray | torch.Tensor): features (N, D), as for
                :meth:`__call__`.
            cameras (sequence of int, optional): as for :meth:`__call__`.

        Returns:
            Neighbours: the lists of every sample, on every rank.
        """
        raise NotImplementedError(
            f'{type(self).__name__} does not shard its kNN search')

    def _camera_array(self, x: np.ndarray,
                      cameras: Optional[Sequence[int]]) -> Optional[
                          np.ndarray]:
        """``cameras`` as an array with one entry per row of ``x`` (None
        stays None)."""
        if cameras is None:
            return None
        cameras = np.asarray(cameras)
        if cameras.shape != (x.shape[0], ):
            raise ValueError(
                f'{type(self).__name__}: cameras must have one entry '
                f'per feature row ({x.shape[0]}), got shape '
                f'{cameras.shape}')
        return cameras

    def check_memory(self, features: Union[np.ndarray,
                                           torch.Tensor]) -> None:
        """Refuse, before any allocation, a clustering of ``features`` that
        cannot fit in memory (raise :class:`MemoryError`). The default
        checks nothing."""

    def describe(self) -> str:
        """The generator and the settings that shape its clusters, as
        messages name it. The default is its ``repr``."""
        return repr(self)

    def explain_few_clusters(self) -> str:
        """Which settings to change when the clustering leaves fewer
        clusters than training needs (a batch's number of identities).

        The default names no setting; a generator that knows which of its
        settings give more clusters overrides it.
        """
        return ('change the settings of the label generator so that it '
                'keeps more clusters')

    @abstractmethod
    def generate(self, features: np.ndarray) -> Tuple[np.ndarray, dict]:
        """Labels of unit, float32 features (N, D) and a diagnostics dict.

        The labels must be int (N,), -1 for outliers, clusters numbered
        contiguously from 0 in the order of their smallest member.
        """
