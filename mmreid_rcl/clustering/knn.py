"""k-nearest-neighbour search by inner product.

The k-reciprocal Jaccard distance needs, for every sample, its ``k1``
nearest neighbours (itself included) among L2-normalised features. On unit
vectors the inner product orders neighbours exactly as the squared euclidean
distance ``2 - 2 cos`` does, so the search runs on the inner product and the
similarities it returns give that distance directly.

The default search, ``'pca'``, returns the exact neighbours several times
faster than brute force on re-ID features: it searches a low-dimensional
projection whose distances never exceed the true ones, re-ranks the
candidates by their exact similarity, and proves for every sample that no
other sample can be closer (see :func:`_search_pca`). ``'ivf'`` and
``'hnsw'`` are approximate, for sizes where even that is too slow.
"""
from typing import Callable, Dict, Optional, Tuple, Union

import faiss
import numpy as np

from mmreid_rcl.utils.threads import faiss_num_threads
from .pca import project_with_residual

KnnConfig = Union[str, dict]

# The search used when none is configured: exact neighbours (verified).
DEFAULT_KNN = 'pca'

# Candidates (query rows x candidates per row) searched and re-ranked at
# once; the working memory of a block is at most about 50 bytes per
# candidate.
DEFAULT_BLOCK_SIZE = 1 << 20

# Default parameters of each search method; a config dict overrides them.
KNN_DEFAULTS: Dict[str, dict] = {
    'exact': {},
    'hnsw': dict(m=32, ef_construction=80, ef_search=128, dim=None,
                 refine=2, train_size=2048, seed=0,
                 block_size=DEFAULT_BLOCK_SIZE),
    'ivf': dict(nlist=None, nprobe=16, train_size=None, seed=0, dim=None,
                refine=2, block_size=DEFAULT_BLOCK_SIZE),
    'pca': dict(dim=256, refine=4, train_size=2048, seed=0, verify=True,
                block_size=DEFAULT_BLOCK_SIZE),
}

# Slack on similarities when deciding that no unseen sample can be closer:
# far above the float32 rounding of the products involved (~1e-6).
_VERIFY_MARGIN = 1e-4


def parse_knn_config(knn: KnnConfig) -> Tuple[str, dict]:
    """Split a kNN setting into its method name and full parameters.

    Args:
        knn (str | dict): a method name (``'pca'``, ``'exact'``,
            ``'hnsw'``, ``'ivf'``) or a dict ``dict(type=<name>, **params)``.

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
    # None means "automatic" (nlist, train_size of ivf) or "off" (dim of
    # ivf and hnsw).
    may_be_none = () if method == 'pca' else ('dim', 'nlist', 'train_size')
    for name in ('dim', 'refine', 'train_size', 'nlist', 'nprobe', 'm',
                 'ef_construction', 'ef_search', 'block_size'):
        if name not in full or (full[name] is None and name in may_be_none):
            continue
        value = full[name]
        if isinstance(value, bool) or not isinstance(
                value, (int, np.integer)) or value < 1:
            raise ValueError(
                f'knn {method!r}: {name} must be a positive int'
                f'{" or None" if name in may_be_none else ""}, '
                f'got {value!r}')
    return method, full


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


def _inner_products_by_idx(x: np.ndarray, ids: np.ndarray,
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


def _pca_pays_off(n: int, full_dim: int, dim: int, width: int,
                  train_size: int) -> bool:
    """Whether the projected search costs clearly less than brute force
    (in multiply-adds; a gathered candidate costs about 4 of them per
    dimension, being memory-bound)."""
    if dim + 1 >= full_dim:
        return False
    brute = n * n * full_dim
    fit = min(train_size, n) * full_dim * full_dim
    reduced = n * full_dim * dim + n * n * (dim + 1) + 4 * n * width * \
        full_dim
    return fit + reduced < 0.7 * brute


def _search_exact(x: np.ndarray, k: int,
                  info: dict) -> Tuple[np.ndarray, np.ndarray]:
    # faiss.knn searches the raw array: no index, hence no second copy of
    # the features, and a BLAS product for the distances.
    return faiss.knn(x, x, k, metric=faiss.METRIC_INNER_PRODUCT)


def _rerank(x: np.ndarray, cand: np.ndarray, k: int,
            sims: Optional[np.ndarray] = None,
            row0: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """The ``k`` candidates of each row with the largest exact inner
    product, most similar first; row i of ``cand`` holds the candidates of
    sample ``row0 + i``.

    ``sims`` may hold some of them already (-inf for the others). A -1
    candidate (an approximate index that found too few) ranks last and is
    kept only if there are fewer than ``k`` others (:func:`knn_search`
    then puts the row's own index in its place).
    """
    missing = cand < 0
    if sims is None:
        sims = _inner_products_by_idx(x, np.where(missing, 0, cand), row0)
        sims[missing] = -np.inf
    order = np.argsort(-sims, axis=1, kind='stable')[:, :k]
    return (np.take_along_axis(sims, order, axis=1),
            np.take_along_axis(cand, order, axis=1))


def _exact_among_candidates(
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
        sim_bound[:, first:] >= floor[:, None] - _VERIFY_MARGIN)
    c += first
    sims[r, c] = pair_inner_products(x, rows[r], cand[r, c])
    del r, c
    best_sims, best_idx = _rerank(x, cand, k, sims)
    if width >= len(x):
        proven = np.ones(num_rows, dtype=bool)
    else:
        proven = sim_bound[:, -1] + _VERIFY_MARGIN < best_sims[:, -1]
    return best_sims, best_idx, proven


def _rows_per_block(block_size: int, width: int) -> int:
    """Query rows of a block of ``block_size`` candidates, ``width`` per
    row."""
    return max(1, block_size // max(width, 1))


def _search_pca(x: np.ndarray, k: int, dim: int, refine: int,
                train_size: int, seed: int, verify: bool, block_size: int,
                info: dict) -> Tuple[np.ndarray, np.ndarray]:
    """Exact neighbours through a search on principal axes.

    1. ``z_i = [P^T (x_i - m), |residual_i|]`` on ``dim`` principal axes:
       ``|z_i - z_j|^2 <= |x_i - x_j|^2`` for every pair (see
       :func:`reduce_with_residual`), so ``z`` gives an upper bound of the
       similarity, ``x_i . x_j <= (|x_i|^2 + |x_j|^2 - |z_i - z_j|^2) / 2``.
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
       steps 5 is skipped and the rows are returned as found
       (approximate).

    Steps 2 to 5 run on blocks of query rows holding ``block_size``
    candidates, so that their working memory does not grow with N; every
    row is searched on its own, so the blocks do not change the result.
    The result equals brute force up to the order of exact ties.
    """
    n, full_dim = x.shape
    dim = min(dim, full_dim)
    width = min(n, refine * k)
    if verify and not _pca_pays_off(n, full_dim, dim, width, train_size):
        info['knn_path'] = 'brute force (smaller than the projection)'
        return _search_exact(x, k, info)
    info['knn_path'] = 'pca verified' if verify else 'pca approximate'
    z = project_with_residual(x, dim, train_size, seed)
    sq_norms = np.einsum('ij,ij->i', x, x)
    max_sq = float(sq_norms.max())
    best_sims = np.empty((n, k), dtype=np.float32)
    best_idx = np.empty((n, k), dtype=np.int64)
    proven = np.empty(n, dtype=bool)
    step = _rows_per_block(block_size, width)
    for r0 in range(0, n, step):
        r1 = min(r0 + step, n)
        bound_dist, cand = faiss.knn(
            z[r0:r1], z, width, metric=faiss.METRIC_L2)
        best_sims[r0:r1], best_idx[r0:r1], proven[r0:r1] = \
            _exact_among_candidates(x, np.arange(r0, r1), bound_dist, cand,
                                    k, sq_norms, max_sq)
        del bound_dist, cand
    unproven = np.flatnonzero(~proven)
    del proven
    info['knn_unproven_rows'] = int(len(unproven))
    if not verify:
        return best_sims, best_idx
    if len(unproven) and width < n:
        wide = min(n, 4 * width)
        step = _rows_per_block(block_size, wide)
        left = []
        for start in range(0, len(unproven), step):
            rows = unproven[start:start + step]
            bound_dist, cand = faiss.knn(
                z[rows], z, wide, metric=faiss.METRIC_L2)
            sims2, idx2, proven = _exact_among_candidates(
                x, rows, bound_dist, cand, k, sq_norms, max_sq,
                floor=best_sims[rows, -1])
            del bound_dist, cand
            best_sims[rows[proven]] = sims2[proven]
            best_idx[rows[proven]] = idx2[proven]
            left.append(rows[~proven])
        unproven = np.concatenate(left)
    del z
    info['knn_brute_force_rows'] = int(len(unproven))
    # Blocks of rows whose gathered features take about 4 bytes per
    # candidate of a block.
    step = _rows_per_block(block_size, full_dim)
    for start in range(0, len(unproven), step):
        rows = unproven[start:start + step]
        best_sims[rows], best_idx[rows] = faiss.knn(
            x[rows], x, k, metric=faiss.METRIC_INNER_PRODUCT)
    return best_sims, best_idx


def _blocked_search(index, data: np.ndarray, x: np.ndarray, k: int,
                    width: int, rerank: bool,
                    block_size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Search every row of ``data`` in ``index`` for ``width`` candidates,
    block by block of ``block_size`` candidates, and keep the ``k`` best
    (re-ranked by their exact inner product on ``x`` if ``rerank``)."""
    n = data.shape[0]
    sims = np.empty((n, k), dtype=np.float32)
    indices = np.empty((n, k), dtype=np.int64)
    step = _rows_per_block(block_size, width)
    for r0 in range(0, n, step):
        block_sims, cand = index.search(data[r0:r0 + step], width)
        if rerank:
            block_sims, cand = _rerank(x, cand, k, row0=r0)
        sims[r0:r0 + step] = block_sims[:, :k]
        indices[r0:r0 + step] = cand[:, :k]
        del block_sims, cand
    return sims, indices


def _search_hnsw(x: np.ndarray, k: int, m: int, ef_construction: int,
                 ef_search: int, dim: Optional[int], refine: int,
                 train_size: int, seed: int, block_size: int,
                 info: dict) -> Tuple[np.ndarray, np.ndarray]:
    n = x.shape[0]
    if dim is not None and dim < x.shape[1]:
        # Graph on the bound vectors (L2), then exact re-ranking.
        data = project_with_residual(x, dim, train_size, seed)
        metric = faiss.METRIC_L2
        width = min(n, refine * k)
    else:
        data, metric, width = x, faiss.METRIC_INNER_PRODUCT, k
    index = faiss.IndexHNSWFlat(data.shape[1], m, metric)
    index.hnsw.efConstruction = ef_construction
    # efSearch below the width would return fewer neighbours.
    index.hnsw.efSearch = max(ef_search, width)
    index.add(data)
    rerank = width != k or metric != faiss.METRIC_INNER_PRODUCT
    return _blocked_search(index, data, x, k, width, rerank, block_size)


def _search_ivf(x: np.ndarray, k: int, nlist: Optional[int], nprobe: int,
                train_size: Optional[int], seed: int, dim: Optional[int],
                refine: int, block_size: int,
                info: dict) -> Tuple[np.ndarray, np.ndarray]:
    n = x.shape[0]
    if nlist is None:
        nlist = max(1, int(4 * np.sqrt(n)))
    nlist = min(nlist, n)
    if train_size is None:
        # faiss asks for at least 39 points per centroid.
        train_size = 64 * nlist
    train_size = min(train_size, n)
    if dim is not None and dim < x.shape[1]:
        # Cells and scan on the bound vectors (L2), then exact re-ranking.
        data = project_with_residual(x, dim, min(train_size, 8192), seed)
        metric = faiss.METRIC_L2
        width = min(n, refine * k)
    else:
        data, metric, width = x, faiss.METRIC_INNER_PRODUCT, k
    rng = np.random.default_rng(seed)
    train = data[np.sort(rng.choice(n, train_size, replace=False))]
    if metric == faiss.METRIC_L2:
        quantizer = faiss.IndexFlatL2(data.shape[1])
    else:
        quantizer = faiss.IndexFlatIP(data.shape[1])
    index = faiss.IndexIVFFlat(quantizer, data.shape[1], nlist, metric)
    index.cp.seed = seed
    index.train(train)
    del train
    index.add(data)
    index.nprobe = min(nprobe, nlist)
    rerank = width != k or metric != faiss.METRIC_INNER_PRODUCT
    return _blocked_search(index, data, x, k, width, rerank, block_size)


_SEARCHERS: Dict[str, Callable] = {
    'exact': _search_exact,
    'hnsw': _search_hnsw,
    'ivf': _search_ivf,
    'pca': _search_pca,
}


def knn_search(features: np.ndarray,
               k: int,
               knn: KnnConfig = DEFAULT_KNN,
               num_threads: Optional[int] = None,
               info: Optional[dict] = None
               ) -> Tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest neighbours of every sample by inner product.

    Each sample is searched among all samples, itself included, so on
    distinct features it comes first.

    Args:
        features (np.ndarray): float32, C-contiguous, L2-normalised features
            of shape (N, D).
        k (int): neighbours per sample, ``k <= N``.
        knn (str | dict): the search, as a name or as a dict such as
            ``dict(type='ivf', nprobe=32)``:

            - ``'pca'`` (default): the exact neighbours. A brute-force
              search on the features projected on ``dim`` (256) principal
              axes (fitted on ``train_size`` samples) plus the norm of the
              residual, whose distances are lower bounds of the true ones,
              gives ``refine * k`` candidates, re-ranked by their exact
              similarity; the bound proves each row exact, and the rows it
              cannot prove are searched again with 4 times the
              candidates, then by brute force (``verify=False`` returns
              them as found instead). Falls back to brute force when the
              projection would not pay off (small N or D). Rows are
              searched in blocks of ``block_size`` candidates (rows times
              candidates per row), which bounds the working memory.
            - ``'exact'``: brute force on the full features, the reference.
            - ``'ivf'``: approximate, faiss IndexIVFFlat, ``nlist`` cells
              (default 4 sqrt(N)), ``nprobe`` cells searched,
              ``train_size``; with ``dim`` it indexes the bound vectors of
              ``dim`` principal axes instead of the features (8 times less
              memory than a copy of 2048-d features at dim 256) and
              re-ranks ``refine * k`` candidates exactly.
            - ``'hnsw'``: approximate, faiss IndexHNSWFlat, ``m``,
              ``ef_construction``, ``ef_search``; ``dim``, ``refine`` as
              for ``'ivf'``; both search and re-rank in blocks of
              ``block_size`` candidates as ``'pca'`` does.

            The clusters are sensitive to missed neighbours (a recall of
            0.95 can leave an ARI of 0.7 against exact kNN), so the
            approximate searches are for sizes the exact one cannot reach.

        num_threads (int, optional): threads of faiss and the BLAS during
            the search; ``None`` uses every available CPU.
        info (dict, optional): filled with details of the search
            (``knn_method``, ``knn_path``; for ``'pca'`` the rows the first
            pass could not prove, ``knn_unproven_rows``, and those searched
            by brute force, ``knn_brute_force_rows``).

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
    if info is None:
        info = {}
    info['knn_method'] = method
    with faiss_num_threads(num_threads):
        sims, indices = _SEARCHERS[method](features, k, info=info, **params)
        missing = indices < 0
        if missing.any():
            rows = np.nonzero(missing)[0]
            indices[missing] = rows
            sims[missing] = pair_inner_products(features, rows, rows)
    return sims, indices


def camera_aware_knn(features: np.ndarray,
                     k: int,
                     cameras: np.ndarray,
                     penalty: float,
                     num_threads: Optional[int] = None,
                     block_rows: int = 8192
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest neighbours of every sample, ranked by a similarity
    that is lowered by ``penalty`` between two images of the same camera.

    Images of one camera share viewpoint, light and background, so a
    person's images from the other cameras often rank behind images of
    other people from the same camera: the k-reciprocal sets, and the
    clusters made from them, then split people by camera. Ranking by
    ``x_i . x_j - penalty [cam_i = cam_j]`` (the sample itself always
    first) lets the other cameras into the lists; the similarities
    returned are the plain inner products, for the weights of the
    encoding.

    Exact: every sample is searched by brute force among the images of
    each camera (``k`` each, faiss), and the ``C k`` candidates are merged
    by the penalised similarity; the penalty is constant within a camera,
    so the overall top ``k`` is among them. The time is that of one
    brute-force search over all samples; the memory N x C x k candidates
    of a block of ``block_rows`` queries plus the N x k result.

    Args:
        features (np.ndarray): float32, C-contiguous, L2-normalised (N, D).
        k (int): neighbours per sample, ``k <= N``.
        cameras (np.ndarray): camera of every sample (N,), any integers.
        penalty (float): subtracted from the similarity of two images of
            the same camera, ``>= 0`` (0 gives exact kNN).
        num_threads (int, optional): threads of faiss and the BLAS.
        block_rows (int): queries searched at once.

    Returns:
        tuple[np.ndarray, np.ndarray]: inner products (N, k) float32 and
        indices (N, k) int64, the sample itself first, then by decreasing
        penalised similarity (ties by index).
    """
    n = features.shape[0]
    cameras = np.asarray(cameras)
    if cameras.shape != (n, ):
        raise ValueError(f'cameras must have one entry per feature row '
                         f'(N={n}), got shape {cameras.shape}')
    if not 1 <= k <= n:
        raise ValueError(f'k must be in [1, N={n}], got {k}')
    if not np.isfinite(penalty) or penalty < 0:
        raise ValueError(f'penalty must be a finite number >= 0, got '
                         f'{penalty!r}')
    groups = [np.nonzero(cameras == c)[0] for c in np.unique(cameras)]
    sims = np.empty((n, k), dtype=np.float32)
    indices = np.empty((n, k), dtype=np.int64)
    with faiss_num_threads(num_threads):
        for r0 in range(0, n, block_rows):
            q = features[r0:r0 + block_rows]
            rows = np.arange(r0, r0 + len(q))
            cand_sims, cand_idx, cand_score = [], [], []
            for members in groups:
                kc = min(k, len(members))
                s, i = faiss.knn(q, features[members], kc,
                                 metric=faiss.METRIC_INNER_PRODUCT)
                i = members[i]
                score = s - penalty * (cameras[rows] == cameras[members[0]]
                                       )[:, None]
                cand_sims.append(s)
                cand_idx.append(i)
                cand_score.append(score.astype(np.float64))
            s = np.concatenate(cand_sims, axis=1)
            i = np.concatenate(cand_idx, axis=1)
            score = np.concatenate(cand_score, axis=1)
            score[i == rows[:, None]] = np.inf  # the sample itself first
            # Decreasing score, ties by index: a stable sort on the index
            # order, then on the score.
            by_index = np.argsort(i, axis=1, kind='stable')
            order = np.take_along_axis(
                by_index,
                np.argsort(
                    -np.take_along_axis(score, by_index, 1),
                    axis=1,
                    kind='stable'), 1)[:, :k]
            sims[r0:r0 + len(q)] = np.take_along_axis(s, order, 1)
            indices[r0:r0 + len(q)] = np.take_along_axis(i, order, 1)
    return sims, indices
