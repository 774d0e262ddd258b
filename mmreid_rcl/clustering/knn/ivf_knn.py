"""Approximate kNN search in an inverted file of k-means cells."""
from typing import Optional

import faiss
import numpy as np

from mmreid_rcl.registry import KNN_SEARCHERS
from .base_knn import DEFAULT_BLOCK_SIZE
from .index_knn import IndexKnn


@KNN_SEARCHERS.register_module(name=['IVFKnn', 'ivf'])
class IVFKnn(IndexKnn):
    """Approximate search in a faiss ``IndexIVFFlat``.

    Approximate: for sizes the exact search cannot reach (see
    :class:`~.IndexKnn` on what missed neighbours do to the clusters).

    Args:
        nlist (int, optional): k-means cells; ``None`` (default) for
            ``4 sqrt(N)``.
        nprobe (int): cells searched per query. Defaults to 16.
        train_size (int, optional): samples the cells are trained on;
            ``None`` (default) for 64 per cell. The principal axes of
            ``dim`` are fitted on at most 8192 of them.
        seed (int): seed of the samples and of the k-means. Defaults to 0.
        dim (int, optional): principal axes of the projection the cells
            hold, ``None`` (default) for the features; see
            :class:`~.IndexKnn`.
        refine (int): candidates per neighbour re-ranked with ``dim``.
            Defaults to 2.
        block_size (int): candidates searched at once. Defaults to 2**20.
    """
    name = 'ivf'

    def __init__(self,
                 nlist: Optional[int] = None,
                 nprobe: int = 16,
                 train_size: Optional[int] = None,
                 seed: int = 0,
                 dim: Optional[int] = None,
                 refine: int = 2,
                 block_size: int = DEFAULT_BLOCK_SIZE) -> None:
        self.nlist = self._positive_int('nlist', nlist, may_be_none=True)
        self.nprobe = self._positive_int('nprobe', nprobe)
        self.train_size = self._positive_int(
            'train_size', train_size, may_be_none=True)
        super().__init__(dim, refine, seed, block_size)

    def cells(self, n: int) -> int:
        """k-means cells of an index of ``n`` samples."""
        nlist = max(1, int(4 * np.sqrt(n))) if self.nlist is None \
            else self.nlist
        return min(nlist, n)

    def samples_trained_on(self, n: int) -> int:
        """Samples the cells of an index of ``n`` samples are trained on."""
        # faiss asks for at least 39 points per centroid.
        train_size = 64 * self.cells(n) if self.train_size is None \
            else self.train_size
        return min(train_size, n)

    def _axes_train_size(self, n: int) -> int:
        return min(self.samples_trained_on(n), 8192)

    def _build_index(self, data: np.ndarray, metric: int, width: int):
        n, dim = data.shape
        nlist = self.cells(n)
        rng = np.random.default_rng(self.seed)
        train = data[np.sort(
            rng.choice(n, self.samples_trained_on(n), replace=False))]
        if metric == faiss.METRIC_L2:
            quantizer = faiss.IndexFlatL2(dim)
        else:
            quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, metric)
        index.cp.seed = self.seed
        index.train(train)
        del train
        index.add(data)
        index.nprobe = min(self.nprobe, nlist)
        return index
