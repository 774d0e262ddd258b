"""The kNN searchers built from a config, and the search through them.

A search is configured as a name (``'auto'``, ``'pca'``, ``'exact'``,
``'hnsw'``, ``'ivf'``, ``'nndescent'``), a dict
``dict(type=<name or class name>, **settings)`` or a searcher;
:func:`build_knn` resolves the name in
:data:`~mmreid_rcl.registry.KNN_SEARCHERS`.
"""
import inspect
from typing import Optional, Tuple

import numpy as np

from mmreid_rcl.registry import KNN_SEARCHERS
from .base_knn import BaseKnn, KnnConfig

# The search used when none is configured: exact neighbours, by brute force
# or the verified projection, whichever a probe finds faster.
DEFAULT_KNN = 'auto'


def _searcher_class(name) -> type:
    """The searcher class a config's ``type`` names (or is)."""
    if inspect.isclass(name) and issubclass(name, BaseKnn):
        return name
    cls = KNN_SEARCHERS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f'unknown knn method {name!r}; expected one of '
                         f'{sorted(KNN_SEARCHERS.module_dict)}')
    return cls


def build_knn(knn: KnnConfig) -> BaseKnn:
    """The searcher of a kNN setting.

    Args:
        knn (str | dict | BaseKnn): a registered name (``'auto'``,
            ``'pca'``, ``'exact'``, ``'hnsw'``, ``'ivf'``, ``'nndescent'`` or
            a class name
            such as ``'HNSWKnn'``), a dict ``dict(type=<name>,
            **settings)`` or a searcher (returned as is).

    Returns:
        BaseKnn: the searcher, its settings checked.
    """
    if isinstance(knn, BaseKnn):
        return knn
    if isinstance(knn, str):
        settings = {}
        cls = _searcher_class(knn)
    elif isinstance(knn, dict):
        settings = dict(knn)
        if settings.get('type') is None:
            raise ValueError(
                f'a knn config dict needs a `type` key, got {knn!r}')
        cls = _searcher_class(settings.pop('type'))
    else:
        raise TypeError(f'knn must be a method name or a config dict (or '
                        f'a searcher), got {knn!r}')
    takes = [
        p for p in inspect.signature(cls).parameters
        if p not in ('self', 'args', 'kwargs')
    ]
    unknown = set(settings) - set(takes)
    if unknown:
        raise ValueError(
            f'unknown parameters {sorted(unknown)} for knn method '
            f'{cls.name!r}; it takes {sorted(takes) or "none"}')
    return cls(**settings)


def knn_search(features: np.ndarray,
               k: int,
               knn: KnnConfig = DEFAULT_KNN,
               num_threads: Optional[int] = None,
               info: Optional[dict] = None
               ) -> Tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest neighbours of every sample by inner product.

    Each sample is searched among all samples, itself included, so on
    distinct features it comes first. On unit vectors the inner product
    orders neighbours exactly as the squared euclidean distance
    ``2 - 2 cos`` does, so the similarities returned give that distance
    directly.

    Args:
        features (np.ndarray): float32, C-contiguous, L2-normalised features
            of shape (N, D).
        k (int): neighbours per sample, ``k <= N``.
        knn (str | dict | BaseKnn): the search (see :func:`build_knn`),
            e.g. ``dict(type='ivf', nprobe=32)``:

            - ``'auto'`` (default, :class:`~.AutoKnn`): the exact
              neighbours, by brute force or ``'pca'``, whichever a probe
              on a sample of rows finds faster.
            - ``'pca'`` (:class:`~.PCAKnn`): the exact neighbours through
              a verified search on principal axes, several times faster
              than brute force on features whose bound proves most rows,
              slower on others.
            - ``'exact'`` (:class:`~.ExactKnn`): brute force, the
              reference.
            - ``'ivf'`` (:class:`~.IVFKnn`) and ``'hnsw'``
              (:class:`~.HNSWKnn`): approximate, for sizes the exact
              searches cannot reach.

        num_threads (int, optional): threads of faiss and the BLAS during
            the search; ``None`` uses every available CPU.
        info (dict, optional): filled with details of the search
            (``knn_method``; for ``'pca'`` ``knn_path``,
            ``knn_unproven_rows`` and ``knn_brute_force_rows``; for
            ``'auto'`` also ``knn_choice``, the search chosen and why, and
            ``knn_probe_proven``).

    Returns:
        tuple[np.ndarray, np.ndarray]: similarities (N, k) float32 sorted
        from the most similar, and indices (N, k) int64. An approximate
        index that finds fewer than ``k`` neighbours pads the end of the row
        with the sample itself.
    """
    return build_knn(knn).search(features, k, num_threads, info)
