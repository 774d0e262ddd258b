"""Re-ID retrieval metric: mAP, CMC and mINP over the test split."""
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmengine.structures import BaseDataElement

from mmreid_rcl.registry import METRICS
from mmreid_rcl.utils.validation import is_int
from ..functional import compute_distance, evaluate_rank, re_ranking

_REQUIRED_KEYS = ('features', 'person_id', 'camera_id', 'is_query')


@METRICS.register_module()
class ReIDMetric(BaseMetric):
    """Retrieval metric of person re-ID (Market-1501 protocol).

    The test split holds query and gallery images together; each data
    sample says which it is through its ``is_query`` flag. Every query
    ranks the gallery by the distance of L2-normalised features; gallery
    images of the query's identity and camera are ignored and queries
    without a match are skipped (see :func:`evaluate_rank`).

    Reported, as percentages: ``mAP``, ``rank{k}`` for each k in ``ranks``
    (CMC, first match) and ``mINP``; plus ``num_invalid_queries``.

    Args:
        metric (str): ``'euclidean'`` (squared, on normalised features) or
            ``'cosine'``. Both give the same ranking without re-ranking.
        ranks (Sequence[int]): The CMC ranks to report.
        rerank (bool): Apply k-reciprocal re-ranking (:func:`re_ranking`).
        k1 (int): k1 of re-ranking.
        k2 (int): k2 of re-ranking.
        lambda_value (float): Weight of the original distance in
            re-ranking.
        collect_device (str): Device to gather results across processes,
            ``'cpu'`` or ``'gpu'``.
        prefix (str, optional): Prefix of the metric names; ``'reid'``
            when None.
        collect_dir (str, optional): Directory for ``'cpu'`` collection.
    """
    default_prefix: Optional[str] = 'reid'

    def __init__(self,
                 metric: str = 'euclidean',
                 ranks: Sequence[int] = (1, 5, 10),
                 rerank: bool = False,
                 k1: int = 20,
                 k2: int = 6,
                 lambda_value: float = 0.3,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir)
        if metric not in ('euclidean', 'cosine'):
            raise ValueError(f"metric must be 'euclidean' or 'cosine', got "
                             f'{metric!r}')
        if isinstance(ranks, int):
            ranks = (ranks, )
        ranks = tuple(ranks)
        if not ranks or not all(
                is_int(k) and k >= 1 for k in ranks):
            raise ValueError(
                f'ranks must be positive ints, got {ranks!r}')
        self.metric = metric
        self.ranks = ranks
        self.rerank = rerank
        self.k1 = k1
        self.k2 = k2
        self.lambda_value = lambda_value

    def process(self, data_batch: Any,
                data_samples: Sequence[Union[dict, BaseDataElement]]) -> None:
        """Store the features and meta information of a batch.

        Args:
            data_batch (Any): The batch from the dataloader (unused).
            data_samples (Sequence[dict | ReIDDataSample]): The model's
                predictions, each with ``features`` of shape (D, ) and
                ``person_id``, ``camera_id``, ``is_query``.
        """
        for sample in data_samples:
            missing = [k for k in _REQUIRED_KEYS if sample.get(k) is None]
            if missing:
                raise KeyError(
                    f'ReIDMetric needs {", ".join(_REQUIRED_KEYS)} in every '
                    f'data sample (predict mode), missing {missing}')
            features = torch.as_tensor(sample.get('features'))
            if features.dim() != 1:
                raise ValueError('features of a data sample must have shape '
                                 f'(D, ), got {tuple(features.shape)}')
            self.results.append(
                dict(
                    features=features.detach().cpu(),
                    person_id=int(sample.get('person_id')),
                    camera_id=int(sample.get('camera_id')),
                    is_query=bool(sample.get('is_query'))))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Rank the gallery for every query and summarise.

        Args:
            results (list): What :meth:`process` stored, from all
                processes.

        Returns:
            dict: ``mAP``, ``rank{k}``, ``mINP`` (percentages) and
            ``num_invalid_queries``.
        """
        is_query = np.array([r['is_query'] for r in results], dtype=bool)
        num_query = int(is_query.sum())
        if num_query == 0 or num_query == len(results):
            raise ValueError(
                f'ReIDMetric needs query and gallery samples, got '
                f'{num_query} queries and {len(results) - num_query} gallery '
                f'samples among {len(results)} (is the test split flagging '
                'its queries with is_query?)')
        dims = {r['features'].shape[0] for r in results}
        if len(dims) != 1:
            raise ValueError(
                f'all features must have the same dim, got {sorted(dims)}')
        features = torch.stack([r['features'] for r in results]).float()
        pids = np.array([r['person_id'] for r in results], dtype=np.int64)
        camids = np.array([r['camera_id'] for r in results], dtype=np.int64)

        query, gallery = features[is_query], features[~is_query]
        distmat = compute_distance(query, gallery, metric=self.metric)
        if self.rerank:
            distmat = re_ranking(
                distmat,
                compute_distance(query, query, metric=self.metric),
                compute_distance(gallery, gallery, metric=self.metric),
                k1=self.k1,
                k2=self.k2,
                lambda_value=self.lambda_value)
        result = evaluate_rank(
            distmat,
            pids[is_query],
            pids[~is_query],
            camids[is_query],
            camids[~is_query],
            max_rank=max(self.ranks))

        num_invalid = result['num_invalid_queries']
        if num_invalid:
            MMLogger.get_current_instance().warning(
                f'{num_invalid} of {num_query} queries have no match in the '
                'gallery and were skipped')
        metrics = dict(mAP=100 * result['mAP'])
        for k in self.ranks:
            metrics[f'rank{k}'] = 100 * float(result['cmc'][k - 1])
        metrics['mINP'] = 100 * result['mINP']
        metrics['num_invalid_queries'] = num_invalid
        return metrics
