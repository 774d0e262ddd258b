"""kNN search that ranks images of other cameras ahead of the sample's
own camera by a penalty."""
from typing import List, Optional, Tuple

import faiss
import numpy as np

from mmreid_rcl.utils.threads import faiss_num_threads
from .base_knn import query_range


def _check_camera_settings(n: int, k: int, cameras: np.ndarray,
                           penalty: float) -> None:
    if cameras.shape != (n, ):
        raise ValueError(f'cameras must have one entry per feature row '
                         f'(N={n}), got shape {cameras.shape}')
    if not 1 <= k <= n:
        raise ValueError(f'k must be in [1, N={n}], got {k}')
    if not np.isfinite(penalty) or penalty < 0:
        raise ValueError(f'penalty must be a finite number >= 0, got '
                         f'{penalty!r}')


def _candidates_per_camera(
        features: np.ndarray, rows: np.ndarray, k: int, cameras: np.ndarray,
        groups: List[np.ndarray], penalty: float
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` most similar images of every camera for each of ``rows``:
    their inner products (R, C k) float32, indices (R, C k) and penalised
    similarities (R, C k) float64, +inf for the sample itself."""
    q = features[rows[0]:rows[-1] + 1]
    cand_sims, cand_idx, cand_score = [], [], []
    for members in groups:
        kc = min(k, len(members))
        s, i = faiss.knn(q, features[members], kc,
                         metric=faiss.METRIC_INNER_PRODUCT)
        same_camera = cameras[rows] == cameras[members[0]]
        cand_sims.append(s)
        cand_idx.append(members[i])
        cand_score.append(
            (s - penalty * same_camera[:, None]).astype(np.float64))
    sims = np.concatenate(cand_sims, axis=1)
    indices = np.concatenate(cand_idx, axis=1)
    score = np.concatenate(cand_score, axis=1)
    score[indices == rows[:, None]] = np.inf  # the sample itself first
    return sims, indices, score


def _best_by_score(sims: np.ndarray, indices: np.ndarray, score: np.ndarray,
                   k: int) -> Tuple[np.ndarray, np.ndarray]:
    """The ``k`` candidates of each row of largest score, ties by index."""
    # A stable sort on the index order, then on the score.
    by_index = np.argsort(indices, axis=1, kind='stable')
    by_score = np.argsort(
        -np.take_along_axis(score, by_index, 1), axis=1, kind='stable')
    order = np.take_along_axis(by_index, by_score, 1)[:, :k]
    return (np.take_along_axis(sims, order, 1),
            np.take_along_axis(indices, order, 1))


def camera_aware_knn(features: np.ndarray,
                     k: int,
                     cameras: np.ndarray,
                     penalty: float,
                     num_threads: Optional[int] = None,
                     block_rows: int = 8192,
                     rows: Optional[slice] = None
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
        rows (slice, optional): only these query rows, a contiguous range
            ``slice(start, stop)``, each searched among all N samples as
            in a search of every row (every row is searched on its own);
            the sharded search of a distributed run gives each rank one.
            Defaults to every row.

    Returns:
        tuple[np.ndarray, np.ndarray]: inner products (R, k) float32 and
        indices (R, k) int64 of the R query rows (N by default), the
        sample itself first, then by decreasing penalised similarity (ties
        by index).
    """
    n = features.shape[0]
    cameras = np.asarray(cameras)
    _check_camera_settings(n, k, cameras, penalty)
    start, stop = query_range(rows, n)
    groups = [np.nonzero(cameras == c)[0] for c in np.unique(cameras)]
    sims = np.empty((stop - start, k), dtype=np.float32)
    indices = np.empty((stop - start, k), dtype=np.int64)
    with faiss_num_threads(num_threads):
        for r0 in range(start, stop, block_rows):
            block = np.arange(r0, min(r0 + block_rows, stop))
            candidates = _candidates_per_camera(features, block, k, cameras,
                                                groups, penalty)
            sims[block - start], indices[block - start] = _best_by_score(
                *candidates, k)
    return sims, indices
