"""The approximate searches' common part: a faiss index of the features,
or of their projection on principal axes, searched in blocks."""
from abc import abstractmethod
from typing import Optional, Tuple

import faiss
import numpy as np

from ..pca import project_with_residual
from .base_knn import BaseKnn
from .inner_products import rerank, rows_per_block


def blocked_search(index, data: np.ndarray, x: np.ndarray, k: int,
                   width: int, exact_rerank: bool,
                   block_size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Search every row of ``data`` in ``index`` for ``width`` candidates,
    block by block of ``block_size`` candidates, and keep the ``k`` best
    (re-ranked by their exact inner product on ``x`` if
    ``exact_rerank``)."""
    n = data.shape[0]
    sims = np.empty((n, k), dtype=np.float32)
    indices = np.empty((n, k), dtype=np.int64)
    step = rows_per_block(block_size, width)
    for r0 in range(0, n, step):
        block_sims, cand = index.search(data[r0:r0 + step], width)
        if exact_rerank:
            block_sims, cand = rerank(x, cand, k, row0=r0)
        sims[r0:r0 + step] = block_sims[:, :k]
        indices[r0:r0 + step] = cand[:, :k]
        del block_sims, cand
    return sims, indices


class IndexKnn(BaseKnn):
    """Approximate search in a faiss index built by the subclass.

    The clusters are sensitive to missed neighbours (a recall of 0.95 can
    leave an ARI of 0.7 against exact kNN): the approximate searches are
    for sizes the exact search cannot reach.

    With ``dim`` (below D) the index holds the bound vectors of ``dim``
    principal axes (:func:`~mmreid_rcl.clustering.pca.project_with_residual`,
    searched by L2) instead of the features, 8 times less memory than a
    copy of 2048-d features at dim 256, and the ``refine * k`` candidates
    it returns are re-ranked by their exact similarity. Without it the
    index holds the features and is searched by inner product. Both search
    (and re-rank) in blocks of ``block_size`` candidates.

    Args:
        dim (int, optional): principal axes of the projection; ``None``
            indexes the features.
        refine (int): candidates per neighbour re-ranked with ``dim``.
        seed (int): seed of the samples the axes (and the index) are
            trained on.
        block_size (int): candidates searched at once.
    """

    def __init__(self, dim: Optional[int], refine: int, seed: int,
                 block_size: int) -> None:
        self.dim = self._positive_int('dim', dim, may_be_none=True)
        self.refine = self._positive_int('refine', refine)
        self.seed = seed
        self.block_size = self._positive_int('block_size', block_size)

    def _search(self, x: np.ndarray, k: int,
                info: dict) -> Tuple[np.ndarray, np.ndarray]:
        n = x.shape[0]
        if self.dim is not None and self.dim < x.shape[1]:
            data = project_with_residual(x, self.dim,
                                         self._axes_train_size(n), self.seed)
            metric = faiss.METRIC_L2
            width = min(n, self.refine * k)
        else:
            data, metric, width = x, faiss.METRIC_INNER_PRODUCT, k
        index = self._build_index(data, metric, width)
        exact_rerank = width != k or metric != faiss.METRIC_INNER_PRODUCT
        return blocked_search(index, data, x, k, width, exact_rerank,
                              self.block_size)

    @abstractmethod
    def _axes_train_size(self, n: int) -> int:
        """Samples the principal axes are fitted on, out of ``n``."""

    @abstractmethod
    def _build_index(self, data: np.ndarray, metric: int, width: int):
        """A faiss index holding ``data``, searched by ``metric`` for
        ``width`` candidates per row."""
