"""The set-objective probe on frozen features, and its tool."""
import numpy as np
import pytest
import torch

from mmreid_rcl.apis import probe_set_objective, split_clusters


def _features(num_clusters=24, size=8, dim=32, seed=0):
    """Clusters around their own directions; every third cluster holds a
    member of the next identity, drawn toward its own identity."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_clusters, dim))
    labels = np.repeat(np.arange(num_clusters), size)
    true_ids = labels.copy()
    x = centres[labels] + 0.6 * rng.standard_normal((len(labels), dim))
    for c in range(0, num_clusters - 1, 3):
        i = c * size
        true_ids[i] = c + 1
        x[i] = 0.4 * centres[c] + centres[c + 1] + \
            0.6 * rng.standard_normal(dim)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    cams = np.arange(len(labels)) % 2
    return torch.as_tensor(x, dtype=torch.float32), labels, true_ids, cams


def test_split_clusters_is_disjoint_complete_and_seeded():
    labels = np.array([0, 0, 1, 1, 2, -1, 3, 3, 2, 4])
    a, b = split_clusters(labels, seed=3)
    assert ((a >= 0) & (b >= 0)).sum() == 0
    np.testing.assert_array_equal((a >= 0) | (b >= 0), labels >= 0)
    for part in (a, b):  # renumbered 0..C-1, same clusters kept together
        kept = part[part >= 0]
        assert set(kept) == set(range(kept.max() + 1))
        for c in np.unique(labels[part >= 0]):
            assert len(set(part[labels == c])) == 1
    again = split_clusters(labels, seed=3)
    np.testing.assert_array_equal(again[0], a)


def test_probe_trains_the_aggregator_and_judges_held_out_clusters():
    feats, labels, true_ids, _ = _features()
    agg = dict(type='SimilarityAttentionAggregator', embed_dims=32)
    result = probe_set_objective(
        feats, labels, true_ids, agg,
        [dict(type='SetContrastiveLoss'),
         dict(type='ConsensusAggregateLoss')],
        steps=20, num_ids=4, k=4, seed=0, eval_every=10)
    assert result['train_clusters'] + result['held_out_clusters'] == 24
    before, after = result['before'], result['after']
    # Untrained, the similarity aggregator's weights ARE the reference.
    assert before['attention_auc'] == pytest.approx(
        before['similarity_auc'], abs=1e-6)
    assert after['similarity_auc'] == before['similarity_auc']
    assert 0 <= after['attention_auc'] <= 1
    assert set(result['losses']) == {'loss_saa', 'loss_consensus'}
    assert [step for step, _ in result['curve']] == [10, 20]
    # Training changed the weights (the last curve point is the result).
    assert result['curve'][-1][1] == after
