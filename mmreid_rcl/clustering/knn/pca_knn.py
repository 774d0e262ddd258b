"""Exact kNN search through a search on principal axes, verified."""
from typing import NamedTuple, Optional, Tuple

import faiss
import numpy as np

from mmreid_rcl.registry import KNN_SEARCHERS
from ..pca import project_with_residual
from .base_knn import DEFAULT_BLOCK_SIZE, BaseKnn
from .exact_knn import exact_search
from .inner_products import pair_inner_products, rerank, rows_per_block

# Slack on similarities when deciding that no unseen sample can be closer:
# far above the float32 rounding of the products involved (~1e-6).
VERIFY_MARGIN = 1e-4


class KnownRows(NamedTuple):
    """Rows a probe has searched by the first and the wider pass.

    Attributes:
        rows (np.ndarray): the rows (R,), ascending.
        sims (np.ndarray): their best similarities so far (R, k).
        idx (np.ndarray): the indices of those (R, k).
        first_unproven (np.ndarray): positions (in ``rows``) of the rows
            the first pass did not prove.
        unproven (np.ndarray): positions of those the wider pass did not
            prove either (brute force's).
    """
    rows: np.ndarray
    sims: np.ndarray
    idx: np.ndarray
    first_unproven: np.ndarray
    unproven: np.ndarray


def pca_pays_off(n: int, full_dim: int, dim: int, width: int,
                 train_size: int) -> bool:
    """Whether the projected search of :class:`PCAKnn` costs clearly less
    than brute force.

    Counted in multiply-adds; a gathered candidate costs about 4 of them
    per dimension, being memory-bound.

    Args:
        n (int): samples N.
        full_dim (int): feature dimension D.
        dim (int): principal axes, ``<= D``.
        width (int): candidates per row of the first pass.
        train_size (int): samples the axes are fitted on.

    Returns:
        bool: True if the projection is worth it.
    """
    if dim + 1 >= full_dim:
        return False
    brute = n * n * full_dim
    fit = min(train_size, n) * full_dim * full_dim
    reduced = n * full_dim * dim + n * n * (dim + 1) + 4 * n * width * \
        full_dim
    return fit + reduced < 0.7 * brute


def exact_among_candidates(
        x: np.ndarray, rows: np.ndarray, bound_dist: np.ndarray,
        cand: np.ndarray, k: int, sq_norms: np.ndarray, max_sq: float,
        floor: Optional[np.ndarray] = None
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact top ``k`` of ``rows`` among their candidates, and whether the
    bound proves them the top ``k`` of all samples.

    Args:
        x (np.ndarray): features (N, D).
        rows (np.ndarray): the query rows (R,).
        bound_dist (np.ndarray): lower bounds of the squared distances to
            the candidates (R, W), ascending; every other sample is at
            least ``bound_dist[:, -1]`` away.
        cand (np.ndarray): candidate indices (R, W).
        k (int): neighbours kept, ``k <= W``.
        sq_norms (np.ndarray): squared norms of all features (N,).
        max_sq (float): their maximum.
        floor (np.ndarray, optional): a similarity each row's k-th best is
            known to reach (R,); by default the worst of its first ``k``
            candidates.

    Returns:
        tuple: similarities (R, k) and indices (R, k), most similar first,
        and a bool (R,) marking the rows proven exact.
    """
    num_rows, width = cand.shape
    # x_i . x_j <= (|x_i|^2 + |x_j|^2 - bound) / 2, with the largest |x_j|.
    sim_bound = (sq_norms[rows][:, None] + max_sq - bound_dist) / 2
    sims = np.full(cand.shape, -np.inf, dtype=np.float32)
    first = 0
    if floor is None:
        sims[:, :k] = pair_inner_products(
            x, np.repeat(rows, k), cand[:, :k].ravel()).reshape(-1, k)
        floor = sims[:, :k].min(axis=1)
        first = k
    # Only candidates whose bound reaches the floor can be in the top k.
    r, c = np.nonzero(
        sim_bound[:, first:] >= floor[:, None] - VERIFY_MARGIN)
    c += first
    sims[r, c] = pair_inner_products(x, rows[r], cand[r, c])
    del r, c
    best_sims, best_idx = rerank(x, cand, k, sims)
    if width >= len(x):
        proven = np.ones(num_rows, dtype=bool)
    else:
        proven = sim_bound[:, -1] + VERIFY_MARGIN < best_sims[:, -1]
    return best_sims, best_idx, proven


@KNN_SEARCHERS.register_module(name=['PCAKnn', 'pca'])
class PCAKnn(BaseKnn):
    """Exact neighbours through a search on principal axes.

    1. ``z_i = [P^T (x_i - m), |residual_i|]`` on ``dim`` principal axes:
       ``|z_i - z_j|^2 <= |x_i - x_j|^2`` for every pair (see
       :func:`~mmreid_rcl.clustering.pca.reduce_with_residual`), so ``z``
       gives an upper bound of the similarity,
       ``x_i . x_j <= (|x_i|^2 + |x_j|^2 - |z_i - z_j|^2) / 2``.
    2. Brute force on ``z`` (BLAS, ``dim + 1`` instead of D columns) finds
       the ``w = refine * k`` candidates of least bound distance.
    3. Exact inner products of the first ``k`` candidates give a floor of
       the k-th best similarity; of the others, only those whose bound
       reaches it are computed. The best ``k`` are kept.
    4. Every sample outside the ``w`` candidates has its bound distance at
       least the w-th candidate's: when the similarity bound that gives is
       below the kept k-th one, the row is proven exact.
    5. Rows not proven are searched again on ``z`` with ``4 w``
       candidates, then, with ``verify``, the few still not proven are
       searched by brute force on the full features. Without ``verify``
       step 5 is skipped and the rows are returned as found
       (approximate).

    Steps 2 to 5 run on blocks of query rows holding ``block_size``
    candidates, so that their working memory does not grow with N; every
    row is searched on its own, so the blocks do not change the result.
    The result equals brute force up to the order of exact ties. With
    ``verify``, a problem too small for the projection to pay off (small
    N or D) is searched by brute force.

    The search reports ``knn_path``, the rows the first pass could not
    prove (``knn_unproven_rows``) and those searched by brute force
    (``knn_brute_force_rows``). Its steps (:meth:`project`,
    :meth:`first_pass`, :meth:`wider_pass`, :meth:`search_projected`)
    serve :class:`~.AutoKnn`, which runs them on a sample of rows first to
    choose between this search and brute force.

    Args:
        dim (int): principal axes. Defaults to 256.
        refine (int): candidates per neighbour of the first pass.
            Defaults to 4.
        train_size (int): samples the axes are fitted on. Defaults to
            2048.
        seed (int): seed of that sample. Defaults to 0.
        verify (bool): prove every row (exact search). Defaults to True.
        block_size (int): candidates (rows x candidates per row) searched
            at once, which bounds the working memory. Defaults to 2**20.
    """
    name = 'pca'
    searches_rows = True

    def __init__(self,
                 dim: int = 256,
                 refine: int = 4,
                 train_size: int = 2048,
                 seed: int = 0,
                 verify: bool = True,
                 block_size: int = DEFAULT_BLOCK_SIZE) -> None:
        self.dim = self._positive_int('dim', dim)
        self.refine = self._positive_int('refine', refine)
        self.train_size = self._positive_int('train_size', train_size)
        self.seed = seed
        self.verify = verify
        self.block_size = self._positive_int('block_size', block_size)

    def _search(self, x: np.ndarray, k: int,
                info: dict) -> Tuple[np.ndarray, np.ndarray]:
        return self._search_rows(x, k, None, info)

    def _search_rows(self, x: np.ndarray, k: int, rows: Optional[slice],
                     info: dict) -> Tuple[np.ndarray, np.ndarray]:
        """The search of the query rows ``rows`` (every row for None):
        the axes, the projection and the choice of brute force are those
        of all N samples, so that each row gets what a search of every
        row gives it."""
        n, full_dim = x.shape
        dim, width = self.sizes(n, full_dim, k)
        if self.verify and not pca_pays_off(n, full_dim, dim, width,
                                            self.train_size):
            info['knn_path'] = 'brute force (smaller than the projection)'
            return exact_search(x, k, rows)
        z, sq_norms = self.project(x)
        return self.search_projected(x, z, sq_norms, k, info, rows)

    def sizes(self, n: int, full_dim: int, k: int) -> Tuple[int, int]:
        """Principal axes and candidates per row of the first pass for
        ``n`` features of dimension ``full_dim``."""
        return min(self.dim, full_dim), min(n, self.refine * k)

    def project(self,
                x: np.ndarray,
                start: Optional[np.ndarray] = None
                ) -> Tuple[np.ndarray, np.ndarray]:
        """Step 1: the bound vectors ``z`` (N, dim + 1) float32 and the
        squared norms of the features (N,); the axes fitted from a random
        block, or in one round from ``start`` (rough axes, D x w,
        ``w <= dim + 16``; see
        :func:`~mmreid_rcl.clustering.pca.principal_axes`)."""
        dim = min(self.dim, x.shape[1])
        z = project_with_residual(x, dim, self.train_size, self.seed, start)
        return z, np.einsum('ij,ij->i', x, x)

    def search_projected(self,
                         x: np.ndarray,
                         z: np.ndarray,
                         sq_norms: np.ndarray,
                         k: int,
                         info: dict,
                         rows: Optional[slice] = None,
                         known: Optional[KnownRows] = None
                         ) -> Tuple[np.ndarray, np.ndarray]:
        """Steps 2 to 5 on every row, or on the query rows ``rows``, ``z``
        and ``sq_norms`` given by :meth:`project`.

        Args:
            x (np.ndarray): features (N, D).
            z (np.ndarray): their bound vectors (N, dim + 1).
            sq_norms (np.ndarray): their squared norms (N,).
            k (int): neighbours per row.
            info (dict): filled with ``knn_path``, ``knn_unproven_rows``
                and, with ``verify``, ``knn_brute_force_rows`` (counts of
                the query rows).
            rows (slice, optional): a contiguous range of query rows,
                each searched among all N samples; by default every row.
            known (KnownRows, optional): rows whose first and wider
                passes already ran (a probe's): those of the query rows
                are not searched again, only brute-forced where they were
                left unproven.

        Returns:
            tuple[np.ndarray, np.ndarray]: similarities (R, k) and indices
            (R, k) of the R query rows, most similar first.
        """
        info['knn_path'] = 'pca verified' if self.verify \
            else 'pca approximate'
        n = len(x)
        first_row = 0 if rows is None else rows.start
        num = n - first_row if rows is None else rows.stop - rows.start
        best_sims = np.empty((num, k), dtype=np.float32)
        best_idx = np.empty((num, k), dtype=np.int64)
        todo = np.ones(num, dtype=bool)
        unproven, left = [], []
        if known is not None:
            # The known rows inside the query range, as positions there.
            inside = (known.rows >= first_row) & (known.rows
                                                  < first_row + num)
            pos = known.rows[inside] - first_row
            best_sims[pos] = known.sims[inside]
            best_idx[pos] = known.idx[inside]
            todo[pos] = False
            for flags, out in ((known.first_unproven, unproven),
                               (known.unproven, left)):
                flagged = np.zeros(len(known.rows), dtype=bool)
                flagged[flags] = True
                out.append(known.rows[inside & flagged] - first_row)
        # Positions (in the query range) of the rows to search now; None
        # for all of them, so that the first pass reads ``z`` in place.
        search = None if todo.all() and rows is None else np.flatnonzero(
            todo)
        query = None if search is None else search + first_row
        if search is None or len(search):
            sims, idx, fresh = self.first_pass(x, z, sq_norms, k, query)
            target = slice(None) if search is None else search
            best_sims[target], best_idx[target] = sims, idx
            fresh = fresh if search is None else search[fresh]
            unproven.append(fresh)
        unproven = np.sort(np.concatenate(unproven)) if unproven else \
            np.empty(0, dtype=np.int64)
        info['knn_unproven_rows'] = int(len(unproven))
        if not self.verify:
            return best_sims, best_idx
        # The rows the known passes left stay left; the others unproven
        # by the first pass now go through the wider pass.
        query = np.arange(first_row, first_row + num)
        brute = np.concatenate(left) if left else np.empty(0, np.int64)
        wider = np.setdiff1d(unproven, np.flatnonzero(~todo))
        if len(wider):
            brute = np.concatenate([
                brute,
                self.wider_pass(x, z, sq_norms, k, query, wider, best_sims,
                                best_idx)
            ])
        brute = np.sort(brute)
        info['knn_brute_force_rows'] = int(len(brute))
        self._brute_force(x, k, query, brute, best_sims, best_idx)
        return best_sims, best_idx

    def first_pass(self, x: np.ndarray, z: np.ndarray, sq_norms: np.ndarray,
                   k: int, rows: Optional[np.ndarray] = None
                   ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Steps 2 to 4 on ``rows``: the best ``k`` of ``refine * k``
        candidates, and which rows that proves exact.

        Args:
            x (np.ndarray): features (N, D).
            z (np.ndarray): their bound vectors (N, dim + 1), from
                :meth:`project`.
            sq_norms (np.ndarray): their squared norms (N,).
            k (int): neighbours per row.
            rows (np.ndarray, optional): the query rows (R,), each searched
                among all N samples; by default every row.

        Returns:
            tuple[np.ndarray, np.ndarray, np.ndarray]: similarities (R, k)
            and indices (R, k), most similar first, and the positions (in
            ``rows``) of the rows not proven.
        """
        width = min(x.shape[0], self.refine * k)
        num = x.shape[0] if rows is None else len(rows)
        max_sq = float(sq_norms.max())
        best_sims = np.empty((num, k), dtype=np.float32)
        best_idx = np.empty((num, k), dtype=np.int64)
        proven = np.empty(num, dtype=bool)
        step = rows_per_block(self.block_size, width)
        for r0 in range(0, num, step):
            r1 = min(r0 + step, num)
            if rows is None:  # a view, not a gathered copy
                block, queries = np.arange(r0, r1), z[r0:r1]
            else:
                block = rows[r0:r1]
                queries = z[block]
            bound_dist, cand = faiss.knn(
                queries, z, width, metric=faiss.METRIC_L2)
            best_sims[r0:r1], best_idx[r0:r1], proven[r0:r1] = \
                exact_among_candidates(x, block, bound_dist, cand, k,
                                       sq_norms, max_sq)
            del bound_dist, cand, queries
        return best_sims, best_idx, np.flatnonzero(~proven)

    def wider_pass(self, x: np.ndarray, z: np.ndarray, sq_norms: np.ndarray,
                   k: int, rows: Optional[np.ndarray], positions: np.ndarray,
                   best_sims: np.ndarray, best_idx: np.ndarray) -> np.ndarray:
        """Step 5 before the brute force: the rows :meth:`first_pass` left
        searched again with ``4 refine k`` candidates each.

        Args:
            x, z, sq_norms, k, rows: as for :meth:`first_pass`.
            positions (np.ndarray): positions in ``rows`` (in ``x`` when
                ``rows`` is None) of the rows to search, not empty.
            best_sims (np.ndarray): the similarities :meth:`first_pass`
                returned (R, k); the rows proven now are updated in place.
            best_idx (np.ndarray): its indices (R, k), updated likewise.

        Returns:
            np.ndarray: the positions of the rows still not proven.
        """
        width = min(x.shape[0], 4 * self.refine * k)
        max_sq = float(sq_norms.max())
        step = rows_per_block(self.block_size, width)
        left = []
        for start in range(0, len(positions), step):
            pos = positions[start:start + step]
            block = pos if rows is None else rows[pos]
            bound_dist, cand = faiss.knn(
                z[block], z, width, metric=faiss.METRIC_L2)
            sims, idx, proven = exact_among_candidates(
                x, block, bound_dist, cand, k, sq_norms, max_sq,
                floor=best_sims[pos, -1])
            del bound_dist, cand
            best_sims[pos[proven]] = sims[proven]
            best_idx[pos[proven]] = idx[proven]
            left.append(pos[~proven])
        return np.concatenate(left)

    def _brute_force(self, x: np.ndarray, k: int, rows: Optional[np.ndarray],
                     positions: np.ndarray, best_sims: np.ndarray,
                     best_idx: np.ndarray) -> None:
        """Brute force on the full features for the query rows at
        ``positions`` of ``rows`` (of ``x`` when ``rows`` is None), written
        at those positions of ``best_sims`` and ``best_idx``."""
        # Blocks of rows whose gathered features take about 4 bytes per
        # candidate of a block.
        step = rows_per_block(self.block_size, x.shape[1])
        for start in range(0, len(positions), step):
            pos = positions[start:start + step]
            block = pos if rows is None else rows[pos]
            best_sims[pos], best_idx[pos] = faiss.knn(
                x[block], x, k, metric=faiss.METRIC_INNER_PRODUCT)
