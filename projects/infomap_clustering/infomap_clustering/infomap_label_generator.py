"""Pseudo labels by InfoMap on a kNN similarity graph."""
import time
from typing import Optional, Tuple

import numpy as np

from mmreid_rcl.clustering import (BaseLabelGenerator, knn_search,
                                   relabel_by_first_member)
from mmreid_rcl.clustering.knn import KnnConfig, build_knn
from mmreid_rcl.registry import LABEL_GENERATORS


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(
            value, (int, np.integer)) or value < 1:
        raise ValueError(f'{name} must be a positive int, got {value!r}')
    return int(value)


def knn_graph_links(similarities: np.ndarray, indices: np.ndarray,
                    min_similarity: float) -> np.ndarray:
    """Weighted links of a kNN graph, from a kNN search's output.

    Every sample is linked to each of its neighbours (itself excepted)
    whose cosine similarity is above ``min_similarity``, with that
    similarity as the weight. A pair found from both sides gives two links,
    so mutual neighbours are bound twice as strongly.

    Args:
        similarities (np.ndarray): (N, k) similarities, as
            :func:`mmreid_rcl.clustering.knn_search` returns.
        indices (np.ndarray): (N, k) neighbour indices.
        min_similarity (float): links at or below it are dropped.

    Returns:
        np.ndarray: (E, 3) float64 rows ``(source, target, weight)``.
    """
    n, k = indices.shape
    sources = np.repeat(np.arange(n), k)
    targets = indices.ravel()
    weights = similarities.ravel().astype(np.float64)
    keep = (targets != sources) & (weights > min_similarity)
    return np.stack([sources[keep], targets[keep], weights[keep]], axis=1)


@LABEL_GENERATORS.register_module()
class InfomapLabelGenerator(BaseLabelGenerator):
    """Pseudo labels by two-level InfoMap on a kNN similarity graph.

    Each sample is linked to its ``k`` nearest neighbours (faiss, cosine
    similarity on L2-normalised features) whose similarity is above
    ``min_similarity``, weighted by that similarity. InfoMap (the map
    equation: the partition that gives the shortest description of a
    random walk on the graph) splits the graph into communities; those
    with fewer than ``min_size`` members, and samples with no link left,
    become outliers (-1).

    Unlike DBSCAN there is no radius to tune: the number of clusters
    follows from the graph, and ``min_similarity`` only cuts links too weak
    to trust.

    Args:
        k (int): neighbours per sample (itself not counted). Defaults to 15.
        min_similarity (float): cosine similarity a link must exceed, in
            [-1, 1). Defaults to 0.5.
        min_size (int): smallest community kept as a cluster. Defaults
            to 4.
        num_trials (int): InfoMap runs; the shortest description wins.
            Defaults to 1.
        seed (int): InfoMap's random seed (>= 1). Defaults to 1.
        knn (str | dict): kNN search, as for
            :class:`mmreid_rcl.clustering.DBSCANLabelGenerator`:
            ``'exact'`` (default) or an approximate index.
        num_threads (int, optional): threads of the kNN search; ``None``
            uses every available CPU.

    Example:
        >>> import projects.infomap_clustering.infomap_clustering  # noqa
        >>> from mmreid_rcl.registry import LABEL_GENERATORS
        >>> gen = LABEL_GENERATORS.build(
        ...     dict(type='InfomapLabelGenerator', k=15, min_size=4))
        >>> labels = gen(features)  # (N,) int64, -1 = outlier
    """

    def __init__(self,
                 k: int = 15,
                 min_similarity: float = 0.5,
                 min_size: int = 4,
                 num_trials: int = 1,
                 seed: int = 1,
                 knn: KnnConfig = 'exact',
                 num_threads: Optional[int] = None) -> None:
        self.k = _positive_int('k', k)
        if isinstance(min_similarity, bool) or not isinstance(
                min_similarity, (int, float, np.floating)) or not (
                    -1 <= min_similarity < 1):
            raise ValueError('min_similarity must be a number in [-1, 1) '
                             f'(a cosine similarity), got {min_similarity!r}')
        self.min_similarity = float(min_similarity)
        self.min_size = _positive_int('min_size', min_size)
        self.num_trials = _positive_int('num_trials', num_trials)
        self.seed = _positive_int('seed (InfoMap needs >= 1)', seed)
        build_knn(knn)  # fail at build time, not at the first epoch
        self.knn = knn
        self.num_threads = num_threads

    def generate(self, features: np.ndarray) -> Tuple[np.ndarray, dict]:
        try:
            from infomap import Infomap
        except ImportError as e:
            raise ImportError(
                'InfomapLabelGenerator needs the infomap package: pip '
                'install -r requirements/optional.txt') from e
        n = features.shape[0]
        if n <= self.k:
            raise ValueError(f'InfomapLabelGenerator needs more samples '
                             f'than k={self.k}, got N={n}')
        t0 = time.perf_counter()
        sims, indices = knn_search(features, self.k + 1, self.knn,
                                   self.num_threads)
        links = knn_graph_links(sims, indices, self.min_similarity)
        del sims, indices
        t1 = time.perf_counter()
        infomap = Infomap(
            two_level=True,
            silent=True,
            seed=self.seed,
            num_trials=self.num_trials)
        # Every sample is a node, so that an unlinked one is reported too.
        infomap.add_nodes(range(n))
        if len(links):
            infomap.add_links(links)
        result = infomap.run()
        modules = result.modules()
        raw = np.fromiter((modules[i] for i in range(n)),
                          dtype=np.int64,
                          count=n)
        t2 = time.perf_counter()
        _, inverse, counts = np.unique(
            raw, return_inverse=True, return_counts=True)
        raw[counts[inverse] < self.min_size] = -1
        labels = relabel_by_first_member(raw)
        info = dict(
            time_knn=t1 - t0,
            time_infomap=t2 - t1,
            time_total=t2 - t0,
            num_links=int(len(links)),
            codelength=float(result.codelength))
        return labels, info

    def explain_few_clusters(self) -> str:
        # Smaller communities are kept, and weaker links keep samples from
        # being left alone (outliers).
        return 'lower min_size or min_similarity of the label generator'

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(k={self.k}, '
                f'min_similarity={self.min_similarity}, '
                f'min_size={self.min_size}, num_trials={self.num_trials}, '
                f'knn={self.knn!r})')
