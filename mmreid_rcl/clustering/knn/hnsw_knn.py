"""Approximate kNN search in an HNSW graph."""
from typing import Optional

import faiss
import numpy as np

from mmreid_rcl.registry import KNN_SEARCHERS
from .base_knn import DEFAULT_BLOCK_SIZE
from .index_knn import IndexKnn


@KNN_SEARCHERS.register_module(name=['HNSWKnn', 'hnsw'])
class HNSWKnn(IndexKnn):
    """Approximate search in a faiss ``IndexHNSWFlat`` graph.

    Approximate: for sizes the exact search cannot reach (see
    :class:`~.IndexKnn` on what missed neighbours do to the clusters).

    Args:
        m (int): links per node. Defaults to 32.
        ef_construction (int): candidates kept while building. Defaults
            to 80.
        ef_search (int): candidates kept while searching (at least the
            candidates returned). Defaults to 128.
        dim (int, optional): principal axes of the projection the graph
            is built on, ``None`` (default) for the features; see
            :class:`~.IndexKnn`.
        refine (int): candidates per neighbour re-ranked with ``dim``.
            Defaults to 2.
        train_size (int, optional): samples the axes are fitted on;
            ``None`` for all. Defaults to 2048.
        seed (int): seed of that sample. Defaults to 0.
        block_size (int): candidates searched at once. Defaults to 2**20.
    """
    name = 'hnsw'

    def __init__(self,
                 m: int = 32,
                 ef_construction: int = 80,
                 ef_search: int = 128,
                 dim: Optional[int] = None,
                 refine: int = 2,
                 train_size: Optional[int] = 2048,
                 seed: int = 0,
                 block_size: int = DEFAULT_BLOCK_SIZE) -> None:
        self.m = self._positive_int('m', m)
        self.ef_construction = self._positive_int('ef_construction',
                                                  ef_construction)
        self.ef_search = self._positive_int('ef_search', ef_search)
        super().__init__(dim, refine, seed, block_size)
        self.train_size = self._positive_int(
            'train_size', train_size, may_be_none=True)

    def _axes_train_size(self, n: int) -> int:
        return n if self.train_size is None else self.train_size

    def _build_index(self, data: np.ndarray, metric: int, width: int):
        index = faiss.IndexHNSWFlat(data.shape[1], self.m, metric)
        index.hnsw.efConstruction = self.ef_construction
        # efSearch below the width would return fewer neighbours.
        index.hnsw.efSearch = max(self.ef_search, width)
        index.add(data)
        return index
