"""The interface of the kNN searchers and the checks of their settings."""
from abc import ABCMeta, abstractmethod
from typing import Optional, Tuple, Union

import numpy as np

from mmreid_rcl.utils.threads import faiss_num_threads
from .inner_products import pair_inner_products

# Candidates (query rows x candidates per row) searched and re-ranked at
# once; the working memory of a block is at most about 50 bytes per
# candidate.
DEFAULT_BLOCK_SIZE = 1 << 20


class BaseKnn(metaclass=ABCMeta):
    """A search for the ``k`` nearest neighbours of every sample by inner
    product, among all samples, itself included.

    Subclasses take their settings as constructor arguments (checked
    there) and implement :meth:`_search`; :meth:`search` checks ``k``,
    sets the threads and pads the rows an approximate index left short.

    Attributes:
        name (str): the short name configs give as ``type`` (``'pca'``),
            reported as ``knn_method``.
    """
    name = ''

    def search(self,
               features: np.ndarray,
               k: int,
               num_threads: Optional[int] = None,
               info: Optional[dict] = None) -> Tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest neighbours of every sample by inner product.

        Args:
            features (np.ndarray): float32, C-contiguous, L2-normalised
                features (N, D).
            k (int): neighbours per sample, ``k <= N``.
            num_threads (int, optional): threads of faiss and the BLAS
                during the search; ``None`` uses every available CPU.
            info (dict, optional): filled with details of the search
                (``knn_method``, and what the searcher reports).

        Returns:
            tuple[np.ndarray, np.ndarray]: similarities (N, k) float32
            sorted from the most similar, and indices (N, k) int64. An
            approximate index that finds fewer than ``k`` neighbours pads
            the end of the row with the sample itself.
        """
        n = features.shape[0]
        if not 1 <= k <= n:
            raise ValueError(f'k must be in [1, N={n}], got {k}')
        if info is None:
            info = {}
        info['knn_method'] = self.name
        with faiss_num_threads(num_threads):
            sims, indices = self._search(features, k, info)
            missing = indices < 0
            if missing.any():
                rows = np.nonzero(missing)[0]
                indices[missing] = rows
                sims[missing] = pair_inner_products(features, rows, rows)
        return sims, indices

    @abstractmethod
    def _search(self, x: np.ndarray, k: int,
                info: dict) -> Tuple[np.ndarray, np.ndarray]:
        """Similarities and indices (N, k), -1 where fewer were found;
        runs with the threads :meth:`search` set."""

    def _positive_int(self, name: str, value, may_be_none: bool = False):
        """``value`` of the setting ``name``, checked to be a positive
        int (or None with ``may_be_none``)."""
        if value is None and may_be_none:
            return value
        if isinstance(value, bool) or not isinstance(
                value, (int, np.integer)) or value < 1:
            raise ValueError(
                f'knn {self.name!r}: {name} must be a positive int'
                f'{" or None" if may_be_none else ""}, got {value!r}')
        return value


KnnConfig = Union[str, dict, BaseKnn]
