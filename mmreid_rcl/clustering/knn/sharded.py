"""kNN search sharded over the ranks of a distributed run.

Every rank holds the same (N, D) features (the re-clustering gathers them
to all ranks); each searches its contiguous share of the query rows among
all N samples and the (N_r, k) results are gathered to every rank, in row
order. The exact searches (``'exact'``, ``'pca'``, ``'auto'``) search each
row on its own, with the axes, projection and choice of all N samples, so
the result is the single-process search's, up to the rounding of the BLAS
products: those of a range of query rows may round differently from those
of all rows (by a few 1e-7), which can swap two neighbours whose
similarities are that close (as the projected search can against brute
force). Without a process group, or with one rank, these are the plain
searches.
"""
import os
from typing import Callable, List, Optional, Tuple

import numpy as np
import torch
from mmengine.dist import (all_gather, all_gather_object, broadcast,
                           broadcast_object_list, get_dist_info)

from mmreid_rcl.utils.threads import available_cpus
from .base_knn import KnnConfig
from .camera_aware import _check_camera_settings, camera_aware_knn
from .search import DEFAULT_KNN, build_knn

# Similarities (R, k) float32 and indices (R, k) int64.
KnnResult = Tuple[np.ndarray, np.ndarray]
# Counts of searched rows that the ranks' reports add up.
SUMMED_INFO = ('knn_unproven_rows', 'knn_brute_force_rows')


def shard_rows(n: int, rank: int, world_size: int) -> slice:
    """The contiguous query rows of ``rank`` out of ``n``: the first ``n %
    world_size`` ranks take one row more than the others."""
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + int(rank < extra))


def rank_threads(num_threads: Optional[int], world_size: int) -> int:
    """Threads of one rank's share of a sharded search: ``num_threads``
    if set, else the available CPUs divided among the ranks of this
    machine (``LOCAL_WORLD_SIZE`` when the launcher sets it, else all
    ``world_size`` ranks), so that concurrent ranks do not oversubscribe
    the cores."""
    if num_threads is not None:
        return num_threads
    local = int(os.environ.get('LOCAL_WORLD_SIZE', world_size))
    return max(1, available_cpus() // max(1, local))


def _check_same_problem(features: np.ndarray, k: int) -> None:
    """Refuse features or ``k`` that differ between the ranks (a mismatch
    would otherwise gather mixed rows, or hang)."""
    n, dim = features.shape
    sample = features[::max(1, n // 64)].sum(dtype=np.float64)
    mine = (n, dim, k, float(sample))
    problems = all_gather_object(mine)
    if any(p != problems[0] for p in problems):
        raise ValueError(
            'a sharded kNN search needs the same features and k on every '
            f'rank; got (N, D, k, checksum) {problems}')


def gather_shards(search: Callable[[slice], KnnResult], n: int,
                  k: int) -> KnnResult:
    """Each rank's share of a search, gathered to every rank.

    A collective: every rank of the default process group calls it.

    Args:
        search (callable): ``search(rows)`` returns the similarities
            (R, k) float32 and indices (R, k) int64 of the query rows
            ``rows``, a ``slice(start, stop)``.
        n (int): query rows in all, N.
        k (int): neighbours per row.

    Returns:
        tuple[np.ndarray, np.ndarray]: similarities (N, k) and indices
        (N, k), the rows of every rank in order.
    """
    rank, world_size = get_dist_info()
    shards = [shard_rows(n, r, world_size) for r in range(world_size)]
    mine = shards[rank]
    size = mine.stop - mine.start
    if size:
        sims, indices = search(mine)
    else:  # more ranks than rows
        sims = np.empty((0, k), dtype=np.float32)
        indices = np.empty((0, k), dtype=np.int64)
    # all_gather needs one shape on every rank: pad to the longest share.
    pad = -(-n // world_size) - size
    sims = np.concatenate([sims, np.zeros((pad, k), dtype=np.float32)])
    indices = np.concatenate([indices, np.full((pad, k), -1, np.int64)])
    gathered = []
    for part in (sims, indices):
        pieces = all_gather(torch.from_numpy(np.ascontiguousarray(part)))
        gathered.append(
            np.concatenate([
                piece[:shard.stop - shard.start].numpy()
                for piece, shard in zip(pieces, shards)
            ]))
    return gathered[0], gathered[1]


def _merge_info(infos: List[dict], world_size: int) -> dict:
    """Rank 0's report of its share, the counts of rows summed over the
    ranks (``knn_unproven_rows``, ``knn_brute_force_rows``), and
    ``knn_ranks``, the ranks that searched."""
    merged = dict(infos[0])
    for key in SUMMED_INFO:
        if all(key in info for info in infos):
            merged[key] = sum(int(info[key]) for info in infos)
    merged['knn_ranks'] = world_size
    return merged


def _search_on_main(searcher, features: np.ndarray, k: int,
                    num_threads: Optional[int], info: dict) -> KnnResult:
    """The whole search on rank 0, broadcast to every rank (a searcher
    that cannot search a range of rows alone)."""
    rank, _ = get_dist_info()
    n = features.shape[0]
    if rank == 0:
        sims, indices = searcher.search(features, k, num_threads, info)
    else:
        sims = np.empty((n, k), dtype=np.float32)
        indices = np.empty((n, k), dtype=np.int64)
    sims, indices = torch.from_numpy(sims), torch.from_numpy(indices)
    broadcast(sims, src=0)
    broadcast(indices, src=0)
    shared = [info if rank == 0 else None]
    broadcast_object_list(shared, src=0)
    info.update(shared[0], knn_ranks=1)
    return sims.numpy(), indices.numpy()


def sharded_knn_search(features: np.ndarray,
                       k: int,
                       knn: KnnConfig = DEFAULT_KNN,
                       num_threads: Optional[int] = None,
                       info: Optional[dict] = None) -> KnnResult:
    """:func:`~.knn_search` with the query rows sharded over the ranks.

    With the default process group initialised and more than one rank, a
    collective: every rank calls it with the same features and settings,
    searches its contiguous share of the rows among all N samples (the
    first ``N % world_size`` ranks one row more) and receives the whole
    result (padded ``all_gather``, gloo or nccl). The exact searches
    (``'exact'``, ``'pca'``, ``'auto'``: each row searched on its own, the
    projection and the choice made on all N samples by every rank) return
    the single-process search's neighbours, up to the rounding of the BLAS
    products of a range of rows (a few 1e-7), which can swap neighbours
    whose similarities are that close. The approximate ``'hnsw'`` and ``'ivf'``
    build an index of all samples, not worth building on every rank: rank
    0 searches alone and broadcasts the result. With no process group or
    one rank it is :func:`~.knn_search`.

    Args:
        features (np.ndarray): float32, C-contiguous, L2-normalised
            features (N, D), the same on every rank.
        k (int): neighbours per sample, ``k <= N``.
        knn (str | dict | BaseKnn): the search (see :func:`~.build_knn`).
        num_threads (int, optional): threads of each rank's search;
            ``None`` divides the available CPUs among the ranks of the
            machine (:func:`rank_threads`); a single process uses them all.
        info (dict, optional): filled as by :func:`~.knn_search`, with rank
            0's report, the row counts (``knn_unproven_rows``,
            ``knn_brute_force_rows``) summed over the ranks, and
            ``knn_ranks``, the ranks that searched.

    Returns:
        tuple[np.ndarray, np.ndarray]: similarities (N, k) float32 sorted
        from the most similar, and indices (N, k) int64, on every rank.
    """
    searcher = build_knn(knn)
    _, world_size = get_dist_info()
    if world_size == 1:
        return searcher.search(features, k, num_threads, info)
    n = features.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f'k must be in [1, N={n}], got {k}')
    _check_same_problem(features, k)
    info = {} if info is None else info
    if not searcher.searches_rows:
        return _search_on_main(searcher, features, k, num_threads, info)
    threads = rank_threads(num_threads, world_size)
    mine = {}
    result = gather_shards(
        lambda rows: searcher.search(features, k, threads, mine, rows), n,
        k)
    info.update(_merge_info(all_gather_object(mine), world_size))
    return result


def sharded_camera_aware_knn(features: np.ndarray,
                             k: int,
                             cameras: np.ndarray,
                             penalty: float,
                             num_threads: Optional[int] = None
                             ) -> KnnResult:
    """:func:`~.camera_aware_knn` with the query rows sharded over the
    ranks, as :func:`sharded_knn_search` shards an exact search: every row
    is searched on its own, so the result is the single-process one. A
    collective in a distributed run (same features, cameras and settings
    on every rank); the plain search otherwise.

    Args:
        features (np.ndarray): float32, C-contiguous, L2-normalised (N, D).
        k (int): neighbours per sample, ``k <= N``.
        cameras (np.ndarray): camera of every sample (N,).
        penalty (float): subtracted from the similarity of two images of
            the same camera, ``>= 0``.
        num_threads (int, optional): threads of each rank's search, as
            for :func:`sharded_knn_search`.

    Returns:
        tuple[np.ndarray, np.ndarray]: inner products (N, k) float32 and
        indices (N, k) int64, on every rank.
    """
    _, world_size = get_dist_info()
    if world_size == 1:
        return camera_aware_knn(features, k, cameras, penalty, num_threads)
    cameras = np.asarray(cameras)
    _check_camera_settings(features.shape[0], k, cameras, penalty)
    _check_same_problem(features, k)
    threads = rank_threads(num_threads, world_size)
    return gather_shards(
        lambda rows: camera_aware_knn(
            features, k, cameras, penalty, threads, rows=rows),
        features.shape[0], k)
