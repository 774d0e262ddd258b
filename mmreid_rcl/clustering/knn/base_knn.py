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


def query_range(rows: Optional[slice], n: int) -> Tuple[int, int]:
    """Start and stop of the contiguous query rows ``rows``
    (``slice(start, stop)``, None for all) of ``n`` samples.

    Raises:
        ValueError: ``rows`` is not a slice with step 1.
    """
    if rows is None:
        return 0, n
    if not isinstance(rows, slice) or rows.step not in (None, 1):
        raise ValueError(
            f'rows must be a contiguous slice(start, stop), got {rows!r}')
    start, stop, _ = rows.indices(n)
    return start, max(start, stop)


class BaseKnn(metaclass=ABCMeta):
    """A search for the ``k`` nearest neighbours of every sample by inner
    product, among all samples, itself included.

    Subclasses take their settings as constructor arguments (checked
    there) and implement :meth:`_search`; :meth:`search` checks ``k``,
    sets the threads and pads the rows an approximate index left short.
    A subclass that can search a range of query rows alone, with the
    result a search of every row gives them (the exact searches), sets
    :attr:`searches_rows` and implements :meth:`_search_rows`; the sharded
    search of a distributed run (:func:`~.sharded_knn_search`) relies on
    it.

    Attributes:
        name (str): the short name configs give as ``type`` (``'pca'``),
            reported as ``knn_method``.
        searches_rows (bool): whether :meth:`search` takes ``rows``.
    """
    name = ''
    searches_rows = False

    def search(self,
               features: np.ndarray,
               k: int,
               num_threads: Optional[int] = None,
               info: Optional[dict] = None,
               rows: Optional[slice] = None
               ) -> Tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest neighbours of every sample by inner product.

        Args:
            features (np.ndarray): float32, C-contiguous, L2-normalised
                features (N, D).
            k (int): neighbours per sample, ``k <= N``.
            num_threads (int, optional): threads of faiss and the BLAS
                during the search; ``None`` uses every available CPU.
            info (dict, optional): filled with details of the search
                (``knn_method``, and what the searcher reports).
            rows (slice, optional): only these query rows, a contiguous
                range ``slice(start, stop)``, each searched among all N
                samples as a search of every row would (searchers that
                :attr:`searches_rows` only). Defaults to every row.

        Returns:
            tuple[np.ndarray, np.ndarray]: similarities (R, k) float32
            sorted from the most similar, and indices (R, k) int64, for
            the R query rows (N by default). An approximate index that
            finds fewer than ``k`` neighbours pads the end of the row with
            the sample itself.
        """
        n = features.shape[0]
        if not 1 <= k <= n:
            raise ValueError(f'k must be in [1, N={n}], got {k}')
        start, stop = self._query_range(rows, n)
        if info is None:
            info = {}
        info['knn_method'] = self.name
        if start == stop:
            return (np.empty((0, k), dtype=np.float32),
                    np.empty((0, k), dtype=np.int64))
        with faiss_num_threads(num_threads):
            if rows is None:
                sims, indices = self._search(features, k, info)
            else:
                sims, indices = self._search_rows(features, k,
                                                  slice(start, stop), info)
            missing = indices < 0
            if missing.any():
                own = start + np.nonzero(missing)[0]
                indices[missing] = own
                sims[missing] = pair_inner_products(features, own, own)
        return sims, indices

    def _query_range(self, rows: Optional[slice], n: int) -> Tuple[int, int]:
        """Start and stop of the query rows ``rows`` of ``n`` samples
        (all of them for None), checked."""
        if rows is not None and not self.searches_rows:
            raise NotImplementedError(
                f'knn {self.name!r} cannot search a range of query rows '
                'alone; search every row')
        return query_range(rows, n)

    @abstractmethod
    def _search(self, x: np.ndarray, k: int,
                info: dict) -> Tuple[np.ndarray, np.ndarray]:
        """Similarities and indices (N, k), -1 where fewer were found;
        runs with the threads :meth:`search` set."""

    def _search_rows(self, x: np.ndarray, k: int, rows: slice,
                     info: dict) -> Tuple[np.ndarray, np.ndarray]:
        """:meth:`_search` for the query rows ``rows`` (a non-empty
        ``slice(start, stop)``) only: (R, k) each; implemented by the
        searchers that :attr:`searches_rows`."""
        raise NotImplementedError

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
