"""DBSCAN on the k-reciprocal Jaccard distance (the cluster-contrast way)."""
import time
from typing import Optional, Tuple, Union

import numpy as np
import scipy.sparse as sp
import torch
from mmengine.logging import print_log

from mmreid_rcl.registry import LABEL_GENERATORS
from mmreid_rcl.utils.threads import available_cpus
from mmreid_rcl.utils.validation import is_real
from .base_label_generator import BaseLabelGenerator, Neighbours
from .dbscan import check_dbscan_settings, dbscan_labels
from .jaccard_distance import (DEFAULT_CHUNK_SIZE, as_unit_features,
                               check_jaccard_settings, jaccard_distance,
                               unit_features_copy_bytes)
from .knn import (DEFAULT_KNN, KnnConfig, build_knn, camera_aware_knn,
                  knn_search, sharded_camera_aware_knn, sharded_knn_search)
from .memory import (check_memory, clustering_memory, dbscan_memory,
                     format_bytes, jaccard_memory, model_sizes)

_ADVICE = ('; cluster fewer features, give the process more memory, or set '
           'memory_check=False in the label generator config to try anyway')


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
            parameters: ``'auto'`` (default, the exact neighbours by the
            faster of the brute-force ``'exact'`` and the verified
            projection ``'pca'``, chosen by a probe and reported as
            ``knn_choice`` in the diagnostics), one of those two, or the
            approximate ``'ivf'`` / ``'hnsw'``, e.g.
            ``dict(type='ivf', dim=256, nprobe=16)``; see
            :func:`~mmreid_rcl.clustering.knn.knn_search`.
        num_threads (int, optional): threads of the kNN search (faiss) and
            of the Jaccard step; ``None`` uses every available CPU
            (mmengine leaves OpenMP at 1 thread in distributed runs).
        chunk_size (int): working-set bound of the Jaccard step, in pair
            contributions (about 40 bytes each) per thread.
        memory_check (bool): before clustering, log the estimated memory
            (:func:`~mmreid_rcl.clustering.memory.clustering_memory`) and
            refuse with :class:`~mmreid_rcl.clustering.ClusteringMemoryError`
            when less is available (under RLIMIT_AS, RLIMIT_DATA, a cgroup
            limit or MemAvailable); check again with the real sizes before
            the pair step of the Jaccard distance and before DBSCAN.
            Defaults to True.
        camera_penalty (float): camera-aware neighbours: rank the kNN
            lists by the similarity minus this between two images of the
            same camera (:func:`~mmreid_rcl.clustering.camera_aware_knn`,
            an exact brute-force search per camera; ``knn`` is then not
            used), so that a person's images from other cameras enter its
            k-reciprocal sets. Needs the camera of every image (the
            ``cameras`` argument; ``ReClusterHook`` passes the dataset's).
            0 (default) ignores cameras. On CUHK03 with a supervised
            model, 0.1 raises the share of a person's cross-camera pairs
            that share a cluster from 0.22 to 0.64 at equal purity
            (README, semi-supervised protocol).

    In a distributed run the kNN search can be shared by the ranks
    (:attr:`shards_knn`): :meth:`search_neighbours`, called on every rank,
    gives each rank a contiguous share of the query rows
    (:func:`~mmreid_rcl.clustering.knn.sharded_knn_search`, or
    :func:`~mmreid_rcl.clustering.knn.sharded_camera_aware_knn` with
    ``camera_penalty``) and gathers the lists, which rank 0 passes as
    ``neighbours=`` to finish alone (Jaccard distance and DBSCAN). The
    exact searches and the camera-aware one give the single-process
    neighbours, hence the same labels; ``'hnsw'`` and ``'ivf'`` are
    searched by rank 0 alone and broadcast. With ``num_threads=None``
    each rank's share runs on the CPUs of its machine divided among the
    ranks there. Called directly, :meth:`generate` searches in this
    process only.

    Example:
        >>> from mmreid_rcl.registry import LABEL_GENERATORS
        >>> gen = LABEL_GENERATORS.build(
        ...     dict(type='DBSCANLabelGenerator', eps=0.6))
        >>> labels = gen(features)  # (N,) int64, -1 = outlier
    """
    shards_knn = True

    def __init__(self,
                 eps: float = 0.6,
                 min_samples: int = 4,
                 k1: int = 30,
                 k2: int = 6,
                 knn: KnnConfig = DEFAULT_KNN,
                 num_threads: Optional[int] = None,
                 chunk_size: int = DEFAULT_CHUNK_SIZE,
                 memory_check: bool = True,
                 camera_penalty: float = 0.0) -> None:
        # Fail at build time, not at the first epoch.
        check_dbscan_settings(eps, min_samples)
        check_jaccard_settings(k1, k2)
        # One searcher for every call: 'auto' remembers its choice
        # between the epochs' re-clusterings.
        self._searcher = build_knn(knn)
        if not isinstance(memory_check, bool):
            raise TypeError(f'memory_check must be True or False, got '
                            f'{memory_check!r}')
        self.eps = eps
        self.min_samples = min_samples
        self.k1 = k1
        self.k2 = k2
        self.knn = knn
        self.num_threads = num_threads
        self.chunk_size = chunk_size
        self.memory_check = memory_check
        if not is_real(camera_penalty) or not 0 <= camera_penalty < 2:
            raise ValueError(f'camera_penalty must be a number in [0, 2), '
                             f'got {camera_penalty!r}')
        self.camera_penalty = float(camera_penalty)
        self._estimate = None

    @property
    def uses_cameras(self) -> bool:
        """Whether the clustering reads the images' cameras."""
        return self.camera_penalty > 0

    def memory_estimate(self, num: int, dim: int) -> dict:
        """Estimated memory of clustering ``num`` features of dimension
        ``dim`` with this generator's settings, on top of the features;
        see :func:`~mmreid_rcl.clustering.memory.clustering_memory`."""
        return clustering_memory(
            num,
            dim,
            self.k1,
            self.k2,
            # The camera-aware search is a brute-force one.
            knn='exact' if self.uses_cameras else self.knn,
            chunk_size=self.chunk_size,
            num_threads=self.num_threads,
            eps=self.eps)

    def check_memory(self, features: Union[np.ndarray,
                                           torch.Tensor]) -> None:
        """Log the memory the clustering of ``features`` needs and refuse
        it if less is available (see ``memory_check``)."""
        self._estimate = None
        shape = tuple(getattr(features, 'shape', ()))
        if not self.memory_check or len(shape) != 2 or shape[0] <= self.k1:
            return  # invalid shapes are reported by the clustering itself
        num, dim = shape
        estimate = self.memory_estimate(num, dim)
        need = estimate['peak'] + unit_features_copy_bytes(features)
        print_log(
            f're-clustering N={num}, D={dim}, k1={self.k1}: needs about '
            f'{format_bytes(need)}',
            logger='current')
        budget = check_memory(
            need, f're-clustering {num} features of dim {dim} with '
            f'k1={self.k1}, k2={self.k2}', _ADVICE, estimate['reserved'])
        self._estimate = dict(
            memory_estimate=int(need), memory_available=budget.available)

    def _threads(self) -> int:
        return available_cpus() if self.num_threads is None \
            else self.num_threads

    def _check_pair_step(self, encoding: sp.csr_matrix) -> None:
        """Check, with the real size of the encoding V, that the pair step
        of the Jaccard distance fits."""
        n = encoding.shape[0]
        pairs = model_sizes(self.k1, self.k2, self.eps)['pairs']
        need = jaccard_memory(n, encoding.nnz, pairs, self.chunk_size,
                              self._threads())
        # V exists already (float64 data, int32 indices).
        need -= encoding.nnz * 12
        check_memory(
            need, f'the Jaccard step of re-clustering {n} features with '
            f'k1={self.k1}, k2={self.k2} (an encoding of '
            f'{encoding.nnz / n:.0f} entries per sample, '
            f'{model_sizes(self.k1, self.k2)["encoding"]:.0f} expected)',
            _ADVICE)

    def _check_dbscan(self, distance: sp.csr_matrix) -> None:
        """Check, with the real size of the distance, that DBSCAN fits."""
        n = distance.shape[0]
        # The distance exists already (float32 data, int32 indices).
        need = dbscan_memory(n, distance.nnz) - distance.nnz * 8
        check_memory(
            need, f'DBSCAN of {n} features on {distance.nnz} distances '
            f'({distance.nnz / n:.0f} per sample)', _ADVICE)

    def search_neighbours(self,
                          features: Union[np.ndarray, torch.Tensor],
                          cameras: Optional[np.ndarray] = None
                          ) -> Neighbours:
        """The ``k1`` nearest neighbours of every sample, the search
        sharded over the ranks of a distributed run.

        A collective there: every rank calls it with the same features
        (and cameras) and receives every sample's lists; the plain search
        of this process otherwise.

        Args:
            features (np.ndarray | torch.Tensor): features (N, D),
                L2-normalised here if they are not already.
            cameras (np.ndarray, optional): the camera of every image,
                needed with ``camera_penalty``.

        Returns:
            Neighbours: similarities and indices (N, k1), and how the
            search went (``knn_method`` ..., ``time_knn``), for
            ``neighbours=`` of :meth:`__call__`.
        """
        x = as_unit_features(features)
        cameras = self._camera_array(x, cameras) if self.uses_cameras \
            else None
        return self._neighbours(x, cameras, sharded=True)

    def _neighbours(self, features: np.ndarray, cameras: Optional[np.ndarray],
                    sharded: bool) -> Neighbours:
        """The ``k1`` lists of unit ``features``: sharded over the ranks
        (a collective) or searched by this process alone."""
        n = features.shape[0]
        if n <= self.k1:
            raise ValueError(f'DBSCANLabelGenerator needs more samples than '
                             f'k1={self.k1}, got N={n}')
        t0 = time.perf_counter()
        info = {}
        if self.uses_cameras:
            if cameras is None:
                raise ValueError(
                    f'DBSCANLabelGenerator with camera_penalty='
                    f'{self.camera_penalty} needs the camera of every '
                    'image, and none was given (a data set without camera '
                    'ids?): set camera_penalty=0')
            search = sharded_camera_aware_knn if sharded else \
                camera_aware_knn
            sims, indices = search(features, self.k1, cameras,
                                   self.camera_penalty, self.num_threads)
            info['knn_method'] = 'camera_aware'
        else:
            search = sharded_knn_search if sharded else knn_search
            sims, indices = search(features, self.k1, self._searcher,
                                   self.num_threads, info=info)
        info['time_knn'] = time.perf_counter() - t0
        return Neighbours(sims, indices, info)

    def generate(self,
                 features: np.ndarray,
                 cameras: Optional[np.ndarray] = None,
                 neighbours: Optional[Neighbours] = None
                 ) -> Tuple[np.ndarray, dict]:
        """Labels of unit features (N, D) and the diagnostics.

        Args:
            features (np.ndarray): float32, L2-normalised (N, D).
            cameras (np.ndarray, optional): the camera of every image,
                needed with ``camera_penalty``.
            neighbours (Neighbours, optional): the lists
                :meth:`search_neighbours` gave for these features; searched
                here (by this process alone) when None.

        Returns:
            tuple[np.ndarray, dict]: labels (N,), -1 for outliers, and the
            times of the steps with what the kNN search reported.
        """
        if neighbours is None:
            neighbours = self._neighbours(features, cameras, sharded=False)
        knn_info = dict(neighbours.info)
        time_knn = knn_info.pop('time_knn', 0.0)
        t1 = time.perf_counter()
        # DBSCAN never looks beyond eps: pairs farther away need not be
        # stored, which shrinks the matrix by orders of magnitude.
        distance = jaccard_distance(
            features,
            k1=self.k1,
            k2=self.k2,
            num_threads=self.num_threads,
            neighbours=(neighbours.sims, neighbours.indices),
            max_distance=self.eps,
            chunk_size=self.chunk_size,
            on_encoding=self._check_pair_step if self.memory_check else None)
        del neighbours
        t2 = time.perf_counter()
        if self.memory_check:
            self._check_dbscan(distance)
        labels = dbscan_labels(distance, self.eps, self.min_samples)
        t3 = time.perf_counter()
        info = dict(
            time_knn=time_knn,
            time_jaccard=t2 - t1,
            time_dbscan=t3 - t2,
            time_total=time_knn + t3 - t1,
            distance_nnz=int(distance.nnz))
        # How the search went ('pca': rows it had to search again;
        # 'auto': the search chosen and why).
        info.update(knn_info)
        if self._estimate is not None:
            info.update(self._estimate)
            self._estimate = None
        return labels, info

    def describe(self) -> str:
        return (f'{type(self).__name__}(eps={self.eps}, '
                f'min_samples={self.min_samples}, k1={self.k1}, '
                f'k2={self.k2}, camera_penalty={self.camera_penalty})')

    def explain_few_clusters(self) -> str:
        return 'raise eps or lower min_samples of the label generator'

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(eps={self.eps}, '
                f'min_samples={self.min_samples}, k1={self.k1}, '
                f'k2={self.k2}, knn={self.knn!r}, '
                f'camera_penalty={self.camera_penalty})')
