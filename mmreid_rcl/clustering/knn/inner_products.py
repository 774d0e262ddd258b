"""Exact inner products of chosen pairs of rows, and the re-ranking of
candidates by them, shared by the kNN searchers."""
from typing import Optional, Tuple

import faiss
import numpy as np


def pair_inner_products(x: np.ndarray, rows: np.ndarray,
                        cols: np.ndarray) -> np.ndarray:
    """``x[rows[t]] . x[cols[t]]`` for every t, without gathering copies.

    Args:
        x (np.ndarray): float32, C-contiguous features (N, D).
        rows (np.ndarray): int indices (P,).
        cols (np.ndarray): int indices (P,).

    Returns:
        np.ndarray: float32 inner products (P,).
    """
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    cols = np.ascontiguousarray(cols, dtype=np.int64)
    out = np.empty(len(rows), dtype=np.float32)
    if len(rows):
        faiss.pairwise_indexed_inner_product(
            x.shape[1], len(rows), faiss.swig_ptr(x), faiss.swig_ptr(rows),
            faiss.swig_ptr(x), faiss.swig_ptr(cols), faiss.swig_ptr(out))
    return out


def inner_products_by_idx(x: np.ndarray, ids: np.ndarray,
                          row0: int = 0) -> np.ndarray:
    """``x[row0 + i] . x[ids[i, t]]`` as an array shaped like ``ids``
    (float32)."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    out = np.empty(ids.shape, dtype=np.float32)
    queries = x[row0:row0 + ids.shape[0]]
    faiss.fvec_inner_products_by_idx(
        faiss.swig_ptr(out), faiss.swig_ptr(queries), faiss.swig_ptr(x),
        faiss.swig_ptr(ids), x.shape[1], ids.shape[0], ids.shape[1])
    return out


def rerank(x: np.ndarray, cand: np.ndarray, k: int,
           sims: Optional[np.ndarray] = None,
           row0: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """The ``k`` candidates of each row with the largest exact inner
    product, most similar first; row i of ``cand`` holds the candidates of
    sample ``row0 + i``.

    ``sims`` may hold some of them already (-inf for the others). A -1
    candidate (an approximate index that found too few) ranks last and is
    kept only if there are fewer than ``k`` others
    (:meth:`~.BaseKnn.search` then puts the row's own index in its place).
    """
    missing = cand < 0
    if sims is None:
        sims = inner_products_by_idx(x, np.where(missing, 0, cand), row0)
        sims[missing] = -np.inf
    order = np.argsort(-sims, axis=1, kind='stable')[:, :k]
    return (np.take_along_axis(sims, order, axis=1),
            np.take_along_axis(cand, order, axis=1))


def rows_per_block(block_size: int, width: int) -> int:
    """Query rows of a block of ``block_size`` candidates, ``width`` per
    row."""
    return max(1, block_size // max(width, 1))
