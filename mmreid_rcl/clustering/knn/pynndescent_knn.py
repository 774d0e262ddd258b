"""Approximate kNN search by NN-descent from a random-projection forest
(the pynndescent library): the neighbour graph of all samples in less
memory and time than faiss' NN-descent."""
from typing import Optional

import numpy as np

from mmreid_rcl.registry import KNN_SEARCHERS
from mmreid_rcl.utils.threads import current_threads
from .base_knn import DEFAULT_BLOCK_SIZE
from .graph_knn import GraphKnn


def _import_pynndescent():
    try:
        import numba
        import pynndescent
    except ImportError as err:  # pragma: no cover - a dependency
        raise ImportError(
            "knn 'pynndescent' needs the pynndescent package "
            f'(pip install pynndescent): {err}') from err
    return numba, pynndescent


@KNN_SEARCHERS.register_module(name=['PyNNDescentKnn', 'pynndescent'])
class PyNNDescentKnn(GraphKnn):
    """Approximate neighbours of every sample through the kNN graph that
    pynndescent builds on principal axes, re-ranked exactly
    (:class:`~.GraphKnn`).

    Step 2 of :class:`~.GraphKnn`, pynndescent's ``NNDescent``: random
    projection trees (``trees`` of them, leaves of about ``degree + 1``
    samples) give every sample its first candidates, the samples of its
    leaves; rounds of NN-descent then join each sample's neighbours
    (``candidates`` new and old ones, forward and reverse, per round)
    until fewer than ``delta`` of the graph's entries change in a round,
    or ``iterations`` rounds. Starting from the trees' leaves, where
    :class:`~.NNDescentKnn` starts from random samples, the graph needs
    fewer rounds, and each sample keeps only its ``degree + 1``
    neighbours (index, distance, flag: 9 bytes each) instead of a pool of
    candidates and lists of new, old and reverse ones.

    The graph alone misses the neighbours of the samples whose
    neighbours are the least similar (noisy images: their nearest are
    other people's images that are not each other's neighbours), hence
    the defaults' steps 4 and 5 of :class:`~.GraphKnn`. Measured on
    2048-d synthetic features, 2 threads, 1,000,000 samples: with the
    least similar 30 % of the rows searched again and reverse edges (the
    defaults) recall@30 0.964 (0.914 with 20 % and no reverse edges), the
    whole re-clustering in 29 minutes and 11.5 GB, the features' 7.6 GB
    included (README, re-clustering). The first search of a process
    compiles pynndescent's functions (numba, about 30 s). The result
    depends on the threads.

    Args:
        dim (int, optional): principal axes of the projection; ``None``
            builds the graph on the features. Defaults to 256.
        degree (int): graph neighbours per sample (pynndescent
            ``n_neighbors`` minus the sample itself; raised to ``k - 1``
            when smaller). Defaults to 64.
        candidates (int, optional): neighbours of each sample joined per
            round (``max_candidates``); ``None``: pynndescent's default,
            ``min(60, degree + 1)``.
        trees (int, optional): random projection trees of the start
            (``n_trees``); ``None``: pynndescent's default, from N.
        iterations (int, optional): most rounds (``n_iters``); ``None``:
            pynndescent's default, from N.
        delta (float): stop when fewer than this share of the entries
            changed in a round. Defaults to 0.001.
        train_size (int): samples the axes are fitted on. Defaults to
            2048.
        seed (int): seed of those samples and of the trees. Defaults to
            0.
        min_rows (int): below this many samples, brute force. Defaults
            to 4096.
        block_size (int): candidates re-ranked at once. Defaults to
            2**20.
        verbose (bool): pynndescent prints its rounds. Defaults to False.
        exact_share (float): share of the samples searched again by brute
            force on the projection, those with the least similar
            neighbours (:class:`~.GraphKnn`, step 4). Defaults to 0.3.
        refine (int): candidates per neighbour of that search. Defaults
            to 2.
        reverse_edges (bool): re-rank each sample's neighbours with the
            samples whose lists hold it (:class:`~.GraphKnn`, step 5).
            Defaults to True.
    """
    name = 'pynndescent'
    path = 'pynndescent graph'

    def __init__(self,
                 dim: int = 256,
                 degree: int = 64,
                 candidates: Optional[int] = None,
                 trees: Optional[int] = None,
                 iterations: Optional[int] = None,
                 delta: float = 0.001,
                 train_size: int = 2048,
                 seed: int = 0,
                 min_rows: int = 4096,
                 block_size: int = DEFAULT_BLOCK_SIZE,
                 verbose: bool = False,
                 exact_share: float = 0.3,
                 refine: int = 2,
                 reverse_edges: bool = True) -> None:
        super().__init__(dim, degree, train_size, seed, min_rows, block_size,
                         verbose, exact_share, refine, reverse_edges)
        self.candidates = self._positive_int(
            'candidates', candidates, may_be_none=True)
        self.trees = self._positive_int('trees', trees, may_be_none=True)
        self.iterations = self._positive_int(
            'iterations', iterations, may_be_none=True)
        if isinstance(delta, bool) or not isinstance(
                delta, (int, float)) or not 0 <= delta < 1:
            raise ValueError(f'knn {self.name!r}: delta must be a number in '
                             f'[0, 1), got {delta!r}')
        self.delta = float(delta)

    def build_graph(self, x: np.ndarray, degree: int) -> np.ndarray:
        """Steps 1 and 2: pynndescent's graph (N, degree) of ``x``, without
        the samples themselves (-1 where it found too few)."""
        numba, pynndescent = _import_pynndescent()
        data = np.ascontiguousarray(self.reduced(x), dtype=np.float32)
        # pynndescent sets numba's threads to n_jobs and restores them.
        threads = min(current_threads(), numba.config.NUMBA_NUM_THREADS)
        index = pynndescent.NNDescent(
            data,
            metric='euclidean',
            n_neighbors=degree + 1,
            n_trees=self.trees,
            n_iters=self.iterations,
            max_candidates=self.candidates,
            delta=self.delta,
            random_state=self.seed,
            low_memory=True,
            compressed=True,
            n_jobs=threads,
            verbose=self.verbose)
        graph = index.neighbor_graph[0]
        del index, data
        return drop_self(graph)


def drop_self(graph: np.ndarray) -> np.ndarray:
    """The graph (N, m) of a search that returns the samples themselves
    among their neighbours, as (N, m - 1) without them (same dtype): each
    row loses its own index where it holds it, its last entry otherwise."""
    n, width = graph.shape
    own = graph == np.arange(n)[:, None]
    # Rows without themselves drop their last (farthest) entry; a row
    # holding itself twice cannot occur (the entries are distinct).
    own[~own.any(axis=1), width - 1] = True
    return graph[~own].reshape(n, width - 1)
