import math

import numpy as np
import pytest
import torch

from mmreid_rcl.evaluation import (ReIDMetric, compute_distance, evaluate_rank,
                                   re_ranking)
from mmreid_rcl.registry import METRICS
from mmreid_rcl.structures import ReIDDataSample


def make_sample(angle_deg, person_id, camera_id, is_query):
    sample = ReIDDataSample(
        metainfo=dict(
            person_id=person_id, camera_id=camera_id, is_query=is_query))
    # Unit vectors at an angle: distances grow with the angle between them.
    angle = math.radians(angle_deg)
    sample.features = torch.tensor([math.cos(angle), math.sin(angle)])
    return sample


def hand_made_samples():
    """Two queries and four gallery images, interleaved.

    Query A (id 1, camera 0, at 0 deg) ranks the gallery at 5, 30, 60, 170
    deg; the one at 5 deg is id 1 under camera 0 (ignored), leaving
    id 2, *id 1*, id 2: AP = 1/2, first match at rank 2, INP = 1/2.
    Query B (id 2, camera 0, at 180 deg) ranks 170, 60, 30, 5 deg:
    *id 2*, id 1, *id 2*, id 1: AP = (1 + 2/3) / 2 = 5/6, rank 1,
    INP = 2/3.
    """
    return [
        make_sample(30, 2, 1, False),
        make_sample(0, 1, 0, True),
        make_sample(60, 1, 1, False),
        make_sample(5, 1, 0, False),
        make_sample(180, 2, 0, True),
        make_sample(170, 2, 2, False),
    ]


EXPECTED = dict(
    mAP=100 * (1 / 2 + 5 / 6) / 2,
    rank1=50.0,
    rank5=100.0,
    rank10=100.0,
    mINP=100 * (1 / 2 + 2 / 3) / 2,
    num_invalid_queries=0)


def run(metric, samples, batch_size=4):
    for start in range(0, len(samples), batch_size):
        metric.process(None, samples[start:start + batch_size])
    return metric.evaluate(len(samples))


def assert_metrics(result, expected, prefix='reid'):
    assert set(result) == {f'{prefix}/{k}' for k in expected}
    for key, value in expected.items():
        assert result[f'{prefix}/{key}'] == pytest.approx(value), key


@pytest.mark.parametrize('metric', ['euclidean', 'cosine'])
def test_reid_metric_hand_computed(metric):
    reid_metric = METRICS.build(dict(type='ReIDMetric', metric=metric))
    assert isinstance(reid_metric, ReIDMetric)
    assert_metrics(run(reid_metric, hand_made_samples()), EXPECTED)


def test_reid_metric_from_dicts_as_the_evaluator_passes_them():
    # mmengine's Evaluator hands metrics data samples turned into dicts.
    reid_metric = METRICS.build(dict(type='ReIDMetric'))
    samples = [s.to_dict() for s in hand_made_samples()]
    assert_metrics(run(reid_metric, samples), EXPECTED)


def test_reid_metric_counts_invalid_queries_and_custom_ranks():
    samples = hand_made_samples()
    samples.append(make_sample(90, 7, 0, True))  # id 7 has no gallery image
    reid_metric = METRICS.build(
        dict(type='ReIDMetric', ranks=(1, 2), prefix='market'))
    result = run(reid_metric, samples)
    expected = dict(
        mAP=EXPECTED['mAP'],
        rank1=50.0,
        rank2=100.0,
        mINP=EXPECTED['mINP'],
        num_invalid_queries=1)
    assert_metrics(result, expected, prefix='market')


def test_reid_metric_with_re_ranking():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((6, 16))
    pids = np.arange(60) % 6
    camids = np.arange(60) // 6 % 3
    is_query = np.arange(60) < 12
    feats = centres[pids] + 1.2 * rng.standard_normal((60, 16))
    samples = []
    for i in range(60):
        sample = ReIDDataSample(
            metainfo=dict(
                person_id=int(pids[i]),
                camera_id=int(camids[i]),
                is_query=bool(is_query[i])))
        sample.features = torch.from_numpy(feats[i]).float()
        samples.append(sample)
    plain = run(METRICS.build(dict(type='ReIDMetric')), samples)
    reranked = run(
        METRICS.build(dict(type='ReIDMetric', rerank=True, k1=5, k2=2)),
        samples)
    assert plain['reid/mAP'] < 90
    assert reranked != pytest.approx(plain)

    # The metric is a thin wrapper of the functions.
    query = torch.from_numpy(feats[is_query]).float()
    gallery = torch.from_numpy(feats[~is_query]).float()
    distmat = re_ranking(
        compute_distance(query, gallery), compute_distance(query, query),
        compute_distance(gallery, gallery), k1=5, k2=2)
    expected = evaluate_rank(distmat, pids[is_query], pids[~is_query],
                             camids[is_query], camids[~is_query])
    assert reranked['reid/mAP'] == pytest.approx(100 * expected['mAP'])
    assert reranked['reid/rank1'] == pytest.approx(100 * expected['cmc'][0])
    assert reranked['reid/mINP'] == pytest.approx(100 * expected['mINP'])

    # With lambda_value=1 re-ranking keeps the original distances.
    kept = run(
        METRICS.build(dict(type='ReIDMetric', rerank=True, lambda_value=1)),
        samples)
    assert kept == pytest.approx(plain)


@pytest.mark.parametrize('is_query,message', [
    (True, '6 queries and 0 gallery'),
    (False, '0 queries and 6 gallery'),
])
def test_reid_metric_needs_query_and_gallery(is_query, message):
    samples = hand_made_samples()
    for sample in samples:
        sample.set_metainfo(dict(is_query=is_query))
    reid_metric = METRICS.build(dict(type='ReIDMetric'))
    with pytest.raises(ValueError, match=message):
        run(reid_metric, samples)


def test_reid_metric_rejects_bad_samples_and_args():
    reid_metric = METRICS.build(dict(type='ReIDMetric'))
    sample = hand_made_samples()[0].to_dict()
    del sample['features']
    with pytest.raises(KeyError, match=r"missing \['features'\]"):
        reid_metric.process(None, [sample])
    sample['features'] = torch.ones(2, 2)
    with pytest.raises(ValueError, match=r'shape \(D, \)'):
        reid_metric.process(None, [sample])
    with pytest.raises(ValueError, match='metric must be'):
        METRICS.build(dict(type='ReIDMetric', metric='l2'))
    with pytest.raises(ValueError, match='ranks must be positive'):
        METRICS.build(dict(type='ReIDMetric', ranks=(0, 5)))
