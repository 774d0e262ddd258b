"""k-nearest-neighbour search by inner product with faiss.

The k-reciprocal Jaccard distance needs, for every sample, its ``k1``
nearest neighbours (itself included) among L2-normalised features. On unit
vectors the inner product orders neighbours exactly as the squared euclidean
distance ``2 - 2 cos`` does, so the search runs on the inner product and the
similarities it returns give that distance directly.
"""
import os
from contextlib import contextmanager
from typing import Callable, Dict, Optional, Tuple, Union

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

KnnConfig = Union[str, dict]

# Default parameters of each search method; a config dict overrides them.
KNN_DEFAULTS: Dict[str, dict] = {
    'exact': {},
    'hnsw': dict(m=32, ef_construction=80, ef_search=128),
    'ivf': dict(nlist=None, nprobe=16, train_size=None, seed=0),
    'pca': dict(dim=256, refine=2, train_size=20000, seed=0),
}


def available_cpus() -> int:
    """Number of CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def faiss_num_threads(num_threads: Optional[int] = None):
    """Run faiss with ``num_threads`` OpenMP threads, then restore.

    mmengine sets ``OMP_NUM_THREADS=1`` in distributed runs, which leaves
    faiss (and the BLAS it calls) on one core while rank 0 clusters and the
    other ranks wait; the search therefore asks for its threads explicitly
    and gives the previous setting back afterwards.

    Args:
        num_threads (int, optional): threads for faiss. ``None`` uses every
            CPU available to the process.
    """
    if num_threads is None:
        num_threads = available_cpus()
    if not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(
            f'num_threads must be a positive int or None, got {num_threads!r}')
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(num_threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def parse_knn_config(knn: KnnConfig) -> Tuple[str, dict]:
    """Split a kNN setting into its method name and full parameters.

    Args:
        knn (str | dict): a method name (``'exact'``, ``'hnsw'``,
            ``'ivf'``) or a dict ``dict(type=<name>, **params)``.

    Returns:
        tuple[str, dict]: the method and its parameters, defaults filled in.
    """
    if isinstance(knn, str):
        method, params = knn, {}
    elif isinstance(knn, dict):
        params = dict(knn)
        method = params.pop('type', None)
        if method is None:
            raise ValueError(
                f'a knn config dict needs a `type` key, got {knn!r}')
    else:
        raise TypeError(
            f'knn must be a method name or a config dict, got {knn!r}')
    if method not in KNN_DEFAULTS:
        raise ValueError(f'unknown knn method {method!r}; expected one of '
                         f'{sorted(KNN_DEFAULTS)}')
    unknown = set(params) - set(KNN_DEFAULTS[method])
    if unknown:
        raise ValueError(
            f'unknown parameters {sorted(unknown)} for knn method '
            f'{method!r}; it takes {sorted(KNN_DEFAULTS[method]) or "none"}')
    full = dict(KNN_DEFAULTS[method])
    full.update(params)
    return method, full


def _search_exact(x: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    # faiss.knn searches the raw array: no index, hence no second copy of
    # the features, and a BLAS product for the distances.
    return faiss.knn(x, x, k, metric=faiss.METRIC_INNER_PRODUCT)


def _search_hnsw(x: np.ndarray, k: int, m: int, ef_construction: int,
                 ef_search: int) -> Tuple[np.ndarray, np.ndarray]:
    index = faiss.IndexHNSWFlat(x.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    # efSearch below k would return fewer than k neighbours.
    index.hnsw.efSearch = max(ef_search, k)
    index.add(x)
    return index.search(x, k)


def _search_ivf(x: np.ndarray, k: int, nlist: Optional[int], nprobe: int,
                train_size: Optional[int],
                seed: int) -> Tuple[np.ndarray, np.ndarray]:
    n, dim = x.shape
    if nlist is None:
        nlist = max(1, int(4 * np.sqrt(n)))
    nlist = min(nlist, n)
    if train_size is None:
        # faiss asks for at least 39 points per centroid.
        train_size = 64 * nlist
    train_size = min(train_size, n)
    rng = np.random.default_rng(seed)
    train = x[np.sort(rng.choice(n, train_size, replace=False))]
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist,
                               faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.train(train)
    del train
    index.add(x)
    index.nprobe = min(nprobe, nlist)
    return index.search(x, k)


def _search_pca(x: np.ndarray, k: int, dim: int, refine: int,
                train_size: int,
                seed: int) -> Tuple[np.ndarray, np.ndarray]:
    n, full_dim = x.shape
    if dim < 1 or refine < 1:
        raise ValueError(
            f'pca knn needs dim >= 1 and refine >= 1, got {dim}, {refine}')
    dim = min(dim, full_dim - 16)
    rng = np.random.default_rng(seed)
    sample = x[np.sort(rng.choice(n, min(train_size, n), replace=False))]
    mean = sample.mean(axis=0)
    sample -= mean
    cov = (sample.T @ sample).astype(np.float64)
    del sample
    # Centred principal axes: they keep the distances between samples
    # best; the reduced vectors are searched by L2, not inner product. A
    # few rounds of subspace iteration find the leading axes in a fraction
    # of the time of a full eigendecomposition of the D x D covariance
    # (orthonormalised through the small Gram matrix: LAPACK's QR is slow
    # on a busy machine).
    # These small products run on one BLAS thread: thread start-up costs
    # more than they do.
    with threadpool_limits(limits=1, user_api='blas'):
        basis = rng.standard_normal((full_dim, dim + 16))
        for _ in range(6):
            basis = cov @ basis
            gram_vals, gram_vecs = np.linalg.eigh(basis.T @ basis)
            basis = basis @ (gram_vecs /
                             np.sqrt(np.maximum(gram_vals, 1e-300)))
        _, rot = np.linalg.eigh(basis.T @ cov @ basis)
        axes = (basis @ rot[:, ::-1][:, :dim]).astype(np.float32)
    offset = mean @ axes
    reduced = np.empty((n, dim), dtype=np.float32)
    step = 8192  # no (N, D) temporary
    for start in range(0, n, step):
        reduced[start:start + step] = x[start:start + step] @ axes - offset
    width = min(n, k * refine)
    _, cand = faiss.knn(reduced, reduced, width, metric=faiss.METRIC_L2)
    del reduced
    # Re-rank the candidates by their exact inner product.
    sims = np.empty(cand.shape, dtype=np.float32)
    step = max(1, (1 << 25) // (width * full_dim))  # ~128 MB gathered
    for start in range(0, n, step):
        rows = slice(start, start + step)
        sims[rows] = np.einsum('qd,qkd->qk', x[rows], x[cand[rows]])
    order = np.argsort(-sims, axis=1, kind='stable')[:, :k]
    return (np.take_along_axis(sims, order, axis=1),
            np.take_along_axis(cand, order, axis=1))


_SEARCHERS: Dict[str, Callable] = {
    'exact': _search_exact,
    'hnsw': _search_hnsw,
    'ivf': _search_ivf,
    'pca': _search_pca,
}


def knn_search(features: np.ndarray,
               k: int,
               knn: KnnConfig = 'exact',
               num_threads: Optional[int] = None
               ) -> Tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest neighbours of every sample by inner product.

    Each sample is searched among all samples, itself included, so on
    distinct features it comes first.

    Args:
        features (np.ndarray): float32, C-contiguous, L2-normalised features
            of shape (N, D).
        k (int): neighbours per sample, ``k <= N``.
        knn (str | dict): ``'exact'`` (default, brute force, the reference)
            or an approximate search, given as a name or as a dict such as
            ``dict(type='pca', dim=256)``:

            - ``'pca'``: brute force on the features projected on their
              ``dim`` (256) principal axes (fitted on ``train_size``
              samples), then the ``refine * k`` candidates re-ranked by
              their exact inner product. Fast (BLAS) and good when the
              features' effective rank is near ``dim`` or below.
            - ``'ivf'``: faiss IndexIVFFlat, ``nlist`` cells (default
              4 sqrt(N)), ``nprobe`` cells searched, ``train_size``.
            - ``'hnsw'``: faiss IndexHNSWFlat, ``m``,
              ``ef_construction``, ``ef_search``.

            The IVF and HNSW scans run outside BLAS and read the full
            vectors, so on 2048-d features they only pay off with many
            cores; ``'pca'`` is the practical approximation on a few.
        num_threads (int, optional): faiss threads during the search;
            ``None`` uses every available CPU.

    Returns:
        tuple[np.ndarray, np.ndarray]: similarities (N, k) float32 sorted
        from the most similar, and indices (N, k) int64. An approximate
        index that finds fewer than ``k`` neighbours pads the end of the row
        with the sample itself.
    """
    method, params = parse_knn_config(knn)
    n = features.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f'k must be in [1, N={n}], got {k}')
    with faiss_num_threads(num_threads):
        sims, indices = _SEARCHERS[method](features, k, **params)
    missing = indices < 0
    if missing.any():
        rows = np.nonzero(missing)[0]
        indices[missing] = rows
        sims[missing] = np.einsum('ij,ij->i', features[rows], features[rows])
    return sims, indices
