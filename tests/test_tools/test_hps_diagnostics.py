import importlib.util
import itertools
import os.path as osp

import numpy as np
import pytest

SCRIPT = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools',
    'analysis', 'hps_diagnostics.py')


@pytest.fixture(scope='module')
def diag():
    spec = importlib.util.spec_from_file_location('hps_diagnostics', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_impostor_flags_by_hand(diag):
    labels = np.array([0, 0, 0, 1, 1, -1, 1, 2])
    true_ids = np.array([7, 7, 3, 5, 9, 7, 9, 4])
    # cluster 0: majority 7 -> sample 2 is an impostor; cluster 1: 9 wins
    # (two of three) -> sample 3; the outlier is never flagged.
    flags = diag.impostor_flags(labels, true_ids)
    np.testing.assert_array_equal(
        flags, [False, False, True, True, False, False, False, False])


def test_impostor_flags_tie_takes_smallest_id(diag):
    flags = diag.impostor_flags(np.array([0, 0]), np.array([8, 2]))
    np.testing.assert_array_equal(flags, [True, False])


def test_pick_rates_by_hand(diag):
    weights = np.array([[0.4, 0.4, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]])
    dispersion = np.array([[0.1, 0.2, 0.9, 0.3], [0.1, 0.5, 0.2, 0.3]])
    sims = np.array([[0.9, 0.8, 0.7, 0.1], [0.9, 0.2, 0.8, 0.7]])
    impostor = np.array([[False, False, True, True],
                         [False, True, False, False]])
    rates = diag.pick_rates(weights, dispersion, sims, impostor, floor=0.2)
    # Set 0: HPS may only take members 0, 1 -> member 1 (genuine); hard
    # takes member 3 (impostor); most attended member 0 (first of the tie).
    # Set 1: all eligible -> member 1 (impostor) for HPS and hard.
    assert rates['any'] == pytest.approx(3 / 8)
    assert rates['hps'] == pytest.approx(0.5)
    assert rates['hard'] == pytest.approx(1.0)
    assert rates['most_attended'] == pytest.approx(0.0)
    assert rates['hps_eligible'] == pytest.approx(6 / 8)
    assert 'central' not in rates
    mutual = np.array([[0.1, 0.2, 0.9, 0.3], [0.5, 0.4, 0.3, 0.2]])
    rates = diag.pick_rates(weights, dispersion, sims, impostor, floor=0.2,
                            mutual=mutual)
    # Central: member 2 of set 0 (impostor), member 0 of set 1 (genuine).
    assert rates['central'] == pytest.approx(0.5)


def test_mean_mutual_similarity_matches_loops(diag):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4, 5))
    x /= np.linalg.norm(x, axis=2, keepdims=True)
    out = diag.mean_mutual_similarity(x)
    for s in range(3):
        for i in range(4):
            ref = np.mean([x[s, i] @ x[s, j] for j in range(4) if j != i])
            assert out[s, i] == pytest.approx(ref)


def test_roc_auc_matches_pairwise_count(diag):
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=40).astype(float)  # many ties
    positive = rng.random(40) < 0.4
    pos, neg = scores[positive], scores[~positive]
    slow = np.mean([1.0 if p > n else 0.5 if p == n else 0.0
                    for p, n in itertools.product(pos, neg)])
    assert diag.roc_auc(scores, positive) == pytest.approx(slow)
    assert diag.roc_auc(np.array([1.0, 2.0]), np.array([False, True])) == 1


def test_normalised_entropy(diag):
    assert diag.normalised_entropy(np.full((3, 4), 0.25)) == pytest.approx(1)
    assert diag.normalised_entropy(np.array([[1.0, 0, 0, 0]])) < 1e-6


def test_draw_sets(diag):
    labels = np.array([0, 0, 0, 0, 0, 1, 1, -1, 2, 2, 2, 2])
    sets = diag.draw_sets(labels, k=4, sets_per_cluster=3, seed=0)
    assert sets.shape == (6, 4)
    for s in sets:
        assert len(set(s)) == 4 and len(set(labels[s])) == 1
        assert labels[s[0]] in (0, 2)
    with pytest.raises(ValueError, match='at least 5'):
        diag.draw_sets(np.array([0, 0]), 5, 1, 0)


def test_similarity_weights_match_loops(diag):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4, 5))
    x /= np.linalg.norm(x, axis=2, keepdims=True)
    w = diag.similarity_weights(x, temperature=0.2)
    for s in range(3):
        received = np.zeros(4)
        for i in range(4):
            others = [j for j in range(4) if j != i]
            e = np.array([np.exp(x[s, i] @ x[s, j] / 0.2) for j in others])
            for j, a in zip(others, e / e.sum()):
                received[j] += a
        np.testing.assert_allclose(w[s], received / received.sum(), rtol=1e-6)
    # A member far from three near-identical ones receives the least.
    a = np.array([1.0, 0, 0])
    x = np.stack([a, a, a, np.array([0, 1.0, 0])])[None]
    w = diag.similarity_weights(x, temperature=0.1)[0]
    assert w[3] < w[0] and np.isclose(w.sum(), 1)


def test_set_loss_matches_loops_and_hand(diag):
    import math

    import torch

    from mmreid_rcl.models.memories import ClusterMemory
    rng = np.random.default_rng(2)
    agg = rng.normal(size=(6, 8))
    agg /= np.linalg.norm(agg, axis=1, keepdims=True)
    protos = rng.normal(size=(5, 8))
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    targets = rng.integers(0, 5, size=6)
    memory = ClusterMemory(feat_dim=8, temperature=0.05)
    memory.prototypes = torch.as_tensor(protos, dtype=torch.float32)
    slow = []
    for a, t in zip(agg, targets):
        logits = [float(a @ p) / 0.05 for p in protos]
        slow.append(math.log(sum(math.exp(v) for v in logits)) - logits[t])
    assert diag.set_loss(memory, agg, targets) == pytest.approx(
        np.mean(slow), rel=1e-4)
    # Two orthogonal prototypes, the aggregate on the first, T = 1:
    # -log(e / (e + 1)).
    memory = ClusterMemory(feat_dim=2, temperature=1.0)
    memory.prototypes = torch.eye(2)
    loss = diag.set_loss(memory, np.array([[1.0, 0.0]]), np.array([0]))
    assert loss == pytest.approx(-np.log(np.e / (np.e + 1)), rel=1e-6)
