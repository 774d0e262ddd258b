"""Brute-force kNN search, the reference the other searches are held to."""
from typing import Tuple

import faiss
import numpy as np

from mmreid_rcl.registry import KNN_SEARCHERS
from .base_knn import BaseKnn


def exact_search(x: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """The exact ``k`` nearest neighbours of every row of ``x`` by inner
    product: similarities (N, k) float32 and indices (N, k) int64."""
    # faiss.knn searches the raw array: no index, hence no second copy of
    # the features, and a BLAS product for the distances.
    return faiss.knn(x, x, k, metric=faiss.METRIC_INNER_PRODUCT)


@KNN_SEARCHERS.register_module(name=['ExactKnn', 'exact'])
class ExactKnn(BaseKnn):
    """Brute force on the full features (faiss), the reference.

    Example:
        >>> from mmreid_rcl.registry import KNN_SEARCHERS
        >>> sims, idx = KNN_SEARCHERS.build(dict(type='exact')).search(x, 30)
    """
    name = 'exact'

    def _search(self, x: np.ndarray, k: int,
                info: dict) -> Tuple[np.ndarray, np.ndarray]:
        return exact_search(x, k)
