"""Approximate kNN search through the neighbour graph of all samples at
once, built on principal axes and re-ranked by exact inner products."""
from abc import abstractmethod
from typing import Tuple

import faiss
import numpy as np

from ..pca import project_with_residual
from .base_knn import DEFAULT_BLOCK_SIZE, BaseKnn
from .exact_knn import exact_search
from .inner_products import pair_inner_products, rerank, rows_per_block


class GraphKnn(BaseKnn):
    """Base of the searchers that build the approximate kNN graph of every
    sample, then re-rank each sample's graph neighbours exactly.

    The re-clustering needs the neighbours of every sample, not of new
    queries, so the graph is the result, not an index to search:

    1. ``z_i = [P^T (x_i - m), |residual_i|]`` on ``dim`` principal axes,
       as in :class:`~.PCAKnn` (``|z_i - z_j| <= |x_i - x_j|``, equal when
       the features lie in the span of the axes).
    2. The graph of each sample's ``degree`` nearest by L2 on ``z``
       (:meth:`build_graph`, the subclass' algorithm).
    3. Each sample's ``k`` best among itself and its ``degree`` graph
       neighbours, by exact inner products of the features, in blocks of
       ``block_size`` candidates.
    4. With ``exact_share`` above 0, that share of the samples, those
       whose ``k`` found neighbours are the least similar on average, are
       searched again by brute force on the projection (computed again:
       it is not kept through the build): their ``refine * k`` nearest
       there, with the neighbours found so far, re-ranked exactly. A
       graph finds last the neighbours of such samples (noisy images,
       whose nearest are other people's images that are not each
       other's neighbours), and neighbours of neighbours do not lead to
       them; the projection's bound puts every exact neighbour among its
       nearest once ``refine * k`` covers the few it ranks in front.
    5. With ``reverse_edges``, each sample's ``k`` are re-ranked once more
       with up to ``k`` samples whose lists hold it: the lists of step 4
       reach the samples they hold, and a sample the graph reached from
       one side only is found from the other.

    Below ``min_rows`` samples the search is brute force, exact. The
    search reports ``knn_path`` (with the steps taken),
    ``knn_graph_degree`` and, with step 4, ``knn_exact_rows``.

    Args:
        dim (int, optional): principal axes of the projection; ``None``
            builds the graph on the features.
        degree (int): graph neighbours per sample (raised to ``k - 1``
            when smaller).
        train_size (int): samples the axes are fitted on.
        seed (int): seed of those samples and of the graph's randomness.
        min_rows (int): below this many samples, brute force.
        block_size (int): candidates re-ranked at once.
        verbose (bool): the graph builder prints its progress.
        exact_share (float): share of the samples searched again by
            brute force on the projection (step 4), in [0, 1].
        refine (int): candidates per neighbour of step 4.
        reverse_edges (bool): step 5.
    """
    path = ''

    def __init__(self,
                 dim: int = 256,
                 degree: int = 48,
                 train_size: int = 2048,
                 seed: int = 0,
                 min_rows: int = 4096,
                 block_size: int = DEFAULT_BLOCK_SIZE,
                 verbose: bool = False,
                 exact_share: float = 0.0,
                 refine: int = 2,
                 reverse_edges: bool = False) -> None:
        self.dim = self._positive_int('dim', dim, may_be_none=True)
        self.degree = self._positive_int('degree', degree)
        self.train_size = self._positive_int('train_size', train_size)
        self.seed = seed
        self.min_rows = self._positive_int('min_rows', min_rows)
        self.block_size = self._positive_int('block_size', block_size)
        self.verbose = bool(verbose)
        if isinstance(exact_share, bool) or not isinstance(
                exact_share, (int, float)) or not 0 <= exact_share <= 1:
            raise ValueError(f'knn {self.name!r}: exact_share must be a '
                             f'number in [0, 1], got {exact_share!r}')
        self.exact_share = float(exact_share)
        self.refine = self._positive_int('refine', refine)
        self.reverse_edges = bool(reverse_edges)

    def graph_degree(self, k: int) -> int:
        """Graph neighbours per sample for a search of ``k``."""
        return max(self.degree, k - 1)

    def _search(self, x: np.ndarray, k: int,
                info: dict) -> Tuple[np.ndarray, np.ndarray]:
        n = x.shape[0]
        degree = self.graph_degree(k)
        if n < self.min_rows or n <= degree + 1:
            info['knn_path'] = 'brute force (fewer than min_rows samples)'
            return exact_search(x, k)
        graph = self.build_graph(x, degree)
        info['knn_path'] = f'{self.path}, exact re-rank'
        info['knn_graph_degree'] = degree
        sims, indices = self._rerank_graph(x, graph, k)
        del graph
        num = int(round(self.exact_share * n))
        if num:
            info['knn_path'] += ', weakest rows by brute force'
            info['knn_exact_rows'] = num
            # Rows whose k found neighbours are the least similar.
            weakest = np.sort(
                np.argpartition(sims.mean(axis=1), num - 1)[:num])
            self._search_again(x, weakest, sims, indices)
        if self.reverse_edges:
            info['knn_path'] += ', reverse edges'
            self._add_reverse(x, sims, indices)
        return sims, indices

    def reduced(self, x: np.ndarray) -> np.ndarray:
        """Step 1: the vectors the graph is built on (``x`` itself when
        ``dim`` is None or not below D)."""
        if self.dim is not None and self.dim < x.shape[1]:
            return project_with_residual(x, self.dim,
                                         min(self.train_size, len(x)),
                                         self.seed)
        return x

    @abstractmethod
    def build_graph(self, x: np.ndarray, degree: int) -> np.ndarray:
        """Steps 1 and 2: the graph (N, degree) of ``x`` (int32 or int64
        indices), without the samples themselves (-1 where fewer were
        found)."""

    def _search_again(self, x: np.ndarray, rows: np.ndarray,
                      sims: np.ndarray, indices: np.ndarray) -> None:
        """Step 4: the ``rows`` searched by brute force on the projection,
        their results in ``sims`` and ``indices`` updated in place."""
        n, k = indices.shape
        data = self.reduced(x)
        width = min(n, self.refine * k)
        step = rows_per_block(self.block_size, width + k)
        for start in range(0, len(rows), step):
            block = rows[start:start + step]
            _, near = faiss.knn(data[block], data, width, faiss.METRIC_L2)
            sims[block], indices[block] = rerank_union(
                x, block, np.concatenate([indices[block], near], axis=1), k)

    def _add_reverse(self, x: np.ndarray, sims: np.ndarray,
                     indices: np.ndarray) -> None:
        """Step 5: each sample's neighbours re-ranked with up to ``k``
        samples whose lists hold it, in place."""
        n, k = indices.shape
        # Every edge i -> j (j != i) proposes i to j; the first k
        # proposals of each j (by i) are kept.
        dst = indices[:, 1:].astype(np.int32).ravel()
        order = np.argsort(dst, kind='stable')
        src = (order // (k - 1)).astype(np.int32)
        dst = dst[order]
        del order
        rank = np.arange(len(dst), dtype=np.int64) - np.searchsorted(
            dst, np.arange(n, dtype=np.int32))[dst]
        keep = rank < k
        proposed = np.full((n, k), -1, dtype=np.int32)
        proposed[dst[keep], rank[keep]] = src[keep]
        del dst, src, rank, keep
        step = rows_per_block(self.block_size, 2 * k)
        for r0 in range(0, n, step):
            r1 = min(r0 + step, n)
            cand = np.concatenate([indices[r0:r1], proposed[r0:r1]], axis=1)
            sims[r0:r1], indices[r0:r1] = rerank_union(
                x, np.arange(r0, r1), cand, k)

    def _rerank_graph(self, x: np.ndarray, graph: np.ndarray,
                      k: int) -> Tuple[np.ndarray, np.ndarray]:
        """Step 3: the ``k`` best of each sample and its graph
        neighbours."""
        n, degree = graph.shape
        sims = np.empty((n, k), dtype=np.float32)
        indices = np.empty((n, k), dtype=np.int64)
        step = rows_per_block(self.block_size, degree + 1)
        for r0 in range(0, n, step):
            r1 = min(r0 + step, n)
            # int64 candidates block by block: the graph may be int32.
            cand = np.concatenate(
                [np.arange(r0, r1, dtype=np.int64)[:, None],
                 graph[r0:r1].astype(np.int64)], axis=1)
            sims[r0:r1], indices[r0:r1] = rerank(x, cand, k, row0=r0)
        return sims, indices


def rerank_union(x: np.ndarray, rows: np.ndarray, cand: np.ndarray,
                 k: int) -> Tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of each row's candidates (R, C) by exact inner
    products, each sample counted once (-1 entries and repeats rank
    last); ``rows`` (R,) are the query samples."""
    cand = np.sort(cand.astype(np.int64), axis=1)
    cand[:, 1:][cand[:, 1:] == cand[:, :-1]] = -1
    sims = np.full(cand.shape, -np.inf, dtype=np.float32)
    r, c = np.nonzero(cand >= 0)
    sims[r, c] = pair_inner_products(x, rows[r], cand[r, c])
    return rerank(x, cand, k, sims)
