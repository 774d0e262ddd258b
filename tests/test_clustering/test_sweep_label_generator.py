"""Sweeping a label generator setting against true ids, and the choice."""
import numpy as np
import pytest

from mmreid_rcl.clustering.diagnostics import (SWEEP_CRITERIA, best_sweep_row,
                                               cluster_quality,
                                               sweep_label_generator)
from mmreid_rcl.registry import LABEL_GENERATORS

GENERATOR = dict(
    type='DBSCANLabelGenerator',
    min_samples=4,
    k1=15,
    k2=2,
    knn='exact',
    memory_check=False)


def _blobs():
    """Three tight blobs of 12 on orthogonal axes and six lone points on
    axes of their own; each lone point is an identity of its own."""
    rng = np.random.default_rng(0)
    axes = np.eye(16)
    blobs = np.repeat(axes[:3], 12, axis=0) + 0.05 * rng.normal(
        size=(36, 16))
    lone = axes[3:9] + 0.05 * rng.normal(size=(6, 16))
    feats = np.concatenate([blobs, lone]).astype(np.float32)
    ids = np.concatenate([np.repeat([0, 1, 2], 12), 10 + np.arange(6)])
    return feats, ids


def test_sweep_too_small_right_too_large():
    feats, ids = _blobs()
    rows = sweep_label_generator(feats, ids, GENERATOR, [0.005, 0.25, 0.99])
    assert [row['eps'] for row in rows] == [0.005, 0.25, 0.99]
    small, right, large = rows
    # Too small: no sample has enough neighbours, all are outliers.
    assert small['num_clusters'] == 0 and small['num_outliers'] == 42
    assert small['ari'] == 0.0
    # Right: the three blobs, the lone points left out.
    assert right['num_clusters'] == 3 and right['num_outliers'] == 6
    assert right['ari'] == pytest.approx(1.0)
    assert right['ari_all'] == pytest.approx(1.0)
    # Too large: blobs merge.
    assert large['num_clusters'] < 3 and large['ari_all'] < 0.5
    assert best_sweep_row(rows)['eps'] == 0.25
    # Each row is what the generator built with that value gives.
    for row in rows:
        gen = LABEL_GENERATORS.build(dict(GENERATOR, eps=row['eps']))
        expected = cluster_quality(gen(feats), ids)
        for name, value in expected.items():
            assert row[name] == pytest.approx(value), (row['eps'], name)
        assert row['time'] >= 0


def test_sweep_other_setting():
    feats, ids = _blobs()
    rows = sweep_label_generator(
        feats, ids, dict(GENERATOR, eps=0.25), [4, 13], key='min_samples')
    assert [row['min_samples'] for row in rows] == [4, 13]
    assert rows[0]['num_clusters'] == 3
    # No sample has 13 neighbours in a blob of 12.
    assert rows[1]['num_clusters'] == 0


def test_sweep_errors():
    feats, ids = _blobs()
    with pytest.raises(ValueError, match="no value of 'eps'"):
        sweep_label_generator(feats, ids, GENERATOR, [])
    with pytest.raises(ValueError, match='one id per feature row: 42 rows'):
        sweep_label_generator(feats, ids[:5], GENERATOR, [0.5])
    with pytest.raises(ValueError, match='with a "type"'):
        sweep_label_generator(feats, ids, dict(eps=0.5), [0.5])
    # A refused value fails before any clustering.
    with pytest.raises(ValueError, match=r'eps=1.5: eps must be in \(0, 1\)'):
        sweep_label_generator(feats, ids, GENERATOR, [0.5, 1.5])


def test_best_row_ties_go_to_the_smaller_value():
    rows = [
        dict(eps=0.5, ari_all=0.7, nmi=0.9),
        dict(eps=0.4, ari_all=0.7, nmi=0.8),
        dict(eps=0.3, ari_all=0.6, nmi=0.95),
        dict(eps=0.6, ari_all=0.7, nmi=0.7),
    ]
    assert best_sweep_row(rows)['eps'] == 0.4
    assert best_sweep_row(rows, criterion='nmi')['eps'] == 0.3
    # Within the tolerance, scores tie.
    rows[2]['ari_all'] = 0.7 - 1e-4
    assert best_sweep_row(rows)['eps'] == 0.4
    assert best_sweep_row(rows, tolerance=1e-3)['eps'] == 0.3
    # Any swept setting.
    assert best_sweep_row([dict(k=5, ari_all=1.0), dict(k=3, ari_all=1.0)],
                          key='k')['k'] == 3


def test_best_row_errors():
    assert 'ari_all' in SWEEP_CRITERIA
    with pytest.raises(ValueError, match='criterion must be one of'):
        best_sweep_row([dict(eps=0.5, ari_all=1.0)], criterion='time')
    with pytest.raises(ValueError, match='no sweep row'):
        best_sweep_row([])
