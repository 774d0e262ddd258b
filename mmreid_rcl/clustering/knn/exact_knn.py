"""Brute-force kNN search, the reference the other searches are held to."""
from typing import Optional, Tuple

import faiss
import numpy as np

from mmreid_rcl.registry import KNN_SEARCHERS
from .base_knn import BaseKnn


def exact_search(x: np.ndarray,
                 k: int,
                 rows: Optional[slice] = None
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """The exact ``k`` nearest neighbours among the rows of ``x`` by inner
    product of every row of ``x``, or of the query rows ``rows`` (a
    contiguous ``slice``): similarities (R, k) float32 and indices (R, k)
    int64."""
    # faiss.knn searches the raw array: no index, hence no second copy of
    # the features (a slice of rows is a view), and a BLAS product for the
    # distances.
    queries = x if rows is None else x[rows]
    return faiss.knn(queries, x, k, metric=faiss.METRIC_INNER_PRODUCT)


@KNN_SEARCHERS.register_module(name=['ExactKnn', 'exact'])
class ExactKnn(BaseKnn):
    """Brute force on the full features (faiss), the reference.

    Example:
        >>> from mmreid_rcl.registry import KNN_SEARCHERS
        >>> sims, idx = KNN_SEARCHERS.build(dict(type='exact')).search(x, 30)
    """
    name = 'exact'
    searches_rows = True

    def _search(self, x: np.ndarray, k: int,
                info: dict) -> Tuple[np.ndarray, np.ndarray]:
        return exact_search(x, k)

    def _search_rows(self, x: np.ndarray, k: int, rows: slice,
                     info: dict) -> Tuple[np.ndarray, np.ndarray]:
        return exact_search(x, k, rows)
