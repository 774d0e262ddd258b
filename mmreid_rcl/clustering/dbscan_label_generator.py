"""DBSCAN on the k-reciprocal Jaccard distance (the cluster-contrast way)."""
import time
from typing import Optional, Tuple

import numpy as np

from mmreid_rcl.registry import LABEL_GENERATORS
from .base_label_generator import BaseLabelGenerator
from .dbscan import dbscan_labels
from .jaccard_distance import DEFAULT_CHUNK_SIZE, jaccard_distance
from .knn import DEFAULT_KNN, KnnConfig, knn_search, parse_knn_config


@LABEL_GENERATORS.register_module()
class DBSCANLabelGenerator(BaseLabelGenerator):
    """Pseudo labels by DBSCAN over the sparse k-reciprocal Jaccard distance.

    Args:
        eps (float): DBSCAN radius on the Jaccard distance, in (0, 1).
            Defaults to 0.6.
        min_samples (int): neighbours (self included) of a core sample.
            Defaults to 4.
        k1 (int): k of the k-reciprocal sets. Defaults to 30.
        k2 (int): neighbours of the local query expansion. Defaults to 6.
        knn (str | dict): kNN search, given as a name or a dict with its
            parameters: ``'pca'`` (default, the exact neighbours, several
            times faster than the brute-force ``'exact'``), or the
            approximate ``'ivf'`` / ``'hnsw'``, e.g.
            ``dict(type='ivf', dim=256, nprobe=16)``; see
            :func:`~mmreid_rcl.clustering.knn.knn_search`.
        num_threads (int, optional): threads of the kNN search (faiss) and
            of the Jaccard step; ``None`` uses every available CPU
            (mmengine leaves OpenMP at 1 thread in distributed runs).
        chunk_size (int): working-set bound of the Jaccard step.

    Example:
        >>> from mmreid_rcl.registry import LABEL_GENERATORS
        >>> gen = LABEL_GENERATORS.build(
        ...     dict(type='DBSCANLabelGenerator', eps=0.6))
        >>> labels = gen(features)  # (N,) int64, -1 = outlier
    """

    def __init__(self,
                 eps: float = 0.6,
                 min_samples: int = 4,
                 k1: int = 30,
                 k2: int = 6,
                 knn: KnnConfig = DEFAULT_KNN,
                 num_threads: Optional[int] = None,
                 chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if not 0 < eps < 1:
            raise ValueError(
                f'eps must be in (0, 1) for the Jaccard distance, got {eps}')
        if isinstance(min_samples, bool) or not isinstance(
                min_samples, (int, np.integer)) or min_samples < 1:
            raise ValueError(
                f'min_samples must be a positive int, got {min_samples!r}')
        if not 1 <= k2 <= k1:
            raise ValueError(f'need 1 <= k2 <= k1, got k1={k1}, k2={k2}')
        parse_knn_config(knn)  # fail at build time, not at the first epoch
        self.eps = eps
        self.min_samples = min_samples
        self.k1 = k1
        self.k2 = k2
        self.knn = knn
        self.num_threads = num_threads
        self.chunk_size = chunk_size

    def generate(self, features: np.ndarray) -> Tuple[np.ndarray, dict]:
        n = features.shape[0]
        if n <= self.k1:
            raise ValueError(f'DBSCANLabelGenerator needs more samples than '
                             f'k1={self.k1}, got N={n}')
        t0 = time.perf_counter()
        knn_info = {}
        neighbours = knn_search(features, self.k1, self.knn,
                                self.num_threads, info=knn_info)
        t1 = time.perf_counter()
        # DBSCAN never looks beyond eps: pairs farther away need not be
        # stored, which shrinks the matrix by orders of magnitude.
        distance = jaccard_distance(
            features,
            k1=self.k1,
            k2=self.k2,
            num_threads=self.num_threads,
            neighbours=neighbours,
            max_distance=self.eps,
            chunk_size=self.chunk_size)
        del neighbours
        t2 = time.perf_counter()
        labels = dbscan_labels(distance, self.eps, self.min_samples)
        t3 = time.perf_counter()
        info = dict(
            time_knn=t1 - t0,
            time_jaccard=t2 - t1,
            time_dbscan=t3 - t2,
            time_total=t3 - t0,
            distance_nnz=int(distance.nnz))
        # How the search went (for 'pca': rows it had to search again).
        info.update(knn_info)
        return labels, info

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(eps={self.eps}, '
                f'min_samples={self.min_samples}, k1={self.k1}, '
                f'k2={self.k2}, knn={self.knn!r})')
