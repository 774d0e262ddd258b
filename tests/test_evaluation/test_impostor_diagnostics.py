import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmreid_rcl.evaluation.functional import (impostor_auc, impostor_flags,
                                              mean_mutual_similarity,
                                              mutual_similarity_weights,
                                              pick_rates, roc_auc, rule_picks,
                                              single_impostor_lowest,
                                              within_set_auc)
from mmreid_rcl.models.memories import (CentralMemoryUpdate, HardMemoryUpdate,
                                        hard_positive_picks)


def test_impostor_flags_accept_non_contiguous_labels():
    labels = np.array([5, 5, 5, 9, 9, -1, 9])
    true_ids = np.array([7, 7, 3, 5, 2, 7, 2])
    np.testing.assert_array_equal(
        impostor_flags(labels, true_ids),
        [False, False, True, True, False, False, False])
    with pytest.raises(ValueError, match='same'):
        impostor_flags(labels, true_ids[:3])


def test_impostor_auc_and_within_set_auc_by_hand():
    weights = np.array([[0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4]])
    impostor = np.array([[False, False, False, True],
                         [False, False, False, False]])
    # Pooled: the impostor (0.1) ties with one genuine 0.1 and is below
    # the other six: (6 + 0.5) / 7. Within sets: above nothing in set 0.
    assert impostor_auc(weights, impostor) == pytest.approx(6.5 / 7)
    assert within_set_auc(weights, impostor) == 1
    assert np.isnan(within_set_auc(weights, np.zeros((2, 4), bool)))
    assert impostor_auc(weights, impostor) == roc_auc(weights, ~impostor)


def test_within_set_auc_matches_pair_loops():
    rng = np.random.default_rng(0)
    weights = rng.integers(0, 4, size=(7, 5)).astype(float)  # ties
    impostor = rng.random((7, 5)) < 0.3
    wins = []
    for s in range(7):
        for i, j in itertools.product(range(5), range(5)):
            if not impostor[s, i] and impostor[s, j]:
                d = weights[s, i] - weights[s, j]
                wins.append(1.0 if d > 0 else 0.5 if d == 0 else 0.0)
    assert within_set_auc(weights, impostor) == pytest.approx(np.mean(wins))


def test_single_impostor_lowest_by_hand():
    weights = np.array([
        [0.1, 0.3, 0.3, 0.3],  # one impostor, lowest: 1
        [0.3, 0.1, 0.3, 0.3],  # one impostor (member 0), not lowest: 0
        [0.25, 0.25, 0.25, 0.25],  # one impostor, 4-way tie: 1/4
        [0.1, 0.1, 0.4, 0.4],  # two impostors: left out
    ])
    impostor = np.array([[True, False, False, False],
                         [True, False, False, False],
                         [False, False, True, False],
                         [True, True, False, False]])
    assert single_impostor_lowest(weights, impostor) == pytest.approx(
        (1 + 0 + 0.25) / 3)
    assert np.isnan(single_impostor_lowest(weights, np.zeros((4, 4), bool)))


def test_mutual_similarity_weights_match_loops():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4, 5))
    x /= np.linalg.norm(x, axis=2, keepdims=True)
    w = mutual_similarity_weights(x, temperature=0.2)
    for s in range(3):
        mean = [np.mean([x[s, i] @ x[s, j] for j in range(4) if j != i])
                for i in range(4)]
        e = np.exp(np.array(mean) / 0.2)
        np.testing.assert_allclose(w[s], e / e.sum(), rtol=1e-6)
    with pytest.raises(ValueError, match='at least 2 members'):
        mean_mutual_similarity(x[:, :1])


def test_pick_rates_agree_with_the_update_rules_themselves():
    g = torch.Generator().manual_seed(0)
    num_sets, k, dim = 40, 4, 6
    x = F.normalize(torch.randn(num_sets, k, dim, generator=g), dim=-1)
    protos = F.normalize(torch.randn(num_sets, dim, generator=g), dim=-1)
    weights = torch.softmax(torch.randn(num_sets, k, generator=g), dim=1)
    dispersion = torch.rand(num_sets, k, generator=g)
    floor = 0.2
    # Every set keeps a member at or above the floor (HPS needs one).
    weights[:, 0] = weights[:, 0].clamp(min=floor)
    impostor = (torch.rand(num_sets, k, generator=g) < 0.3).numpy()
    proto_sims = (x * protos[:, None]).sum(-1)
    mutual = mean_mutual_similarity(x.double().numpy())
    rates = pick_rates(weights.numpy(), dispersion.numpy(),
                       proto_sims.numpy(), impostor, floor, mutual)
    rows = np.arange(num_sets)
    hard = rule_picks(HardMemoryUpdate(), x, protos, chunk=7)
    assert rates['hard'] == pytest.approx(impostor[rows, hard].mean())
    np.testing.assert_array_equal(hard, proto_sims.argmin(1).numpy())
    central = rule_picks(CentralMemoryUpdate(), x, protos)
    assert rates['central'] == pytest.approx(impostor[rows, central].mean())
    hps = hard_positive_picks(
        torch.arange(num_sets).repeat_interleave(k), weights.reshape(-1),
        torch.full((num_sets * k, ), floor), dispersion.reshape(-1))
    hps = (hps - torch.arange(num_sets) * k).numpy()
    assert rates['hps'] == pytest.approx(impostor[rows, hps].mean())
    expected = torch.where(weights >= floor, dispersion,
                           torch.tensor(-1.0)).argmax(1).numpy()
    np.testing.assert_array_equal(hps, expected)


def test_pick_rates_leave_out_sets_without_an_eligible_member():
    weights = np.array([[0.05, 0.05, 0.05, 0.85], [0.1, 0.1, 0.1, 0.7]])
    dispersion = np.array([[0.9, 0.1, 0.1, 0.2], [0.1, 0.1, 0.1, 0.1]])
    impostor = np.array([[True, False, False, False],
                         [False, False, False, True]])
    rates = pick_rates(weights, dispersion, dispersion, impostor, floor=0.8)
    # Set 1 has no member at or above 0.8: only set 0 counts, member 3.
    assert rates['hps'] == 0
    assert rates['hps_eligible'] == pytest.approx(1 / 8)
    rates = pick_rates(weights, dispersion, dispersion, impostor, floor=0.9)
    assert np.isnan(rates['hps'])


def test_pick_rates_with_members_hps_may_not_pick():
    weights = np.full((2, 4), 0.25)
    dispersion = np.array([[0.9, 0.5, 0.1, 0.2], [0.1, 0.2, 0.3, 0.4]])
    impostor = np.array([[True, False, False, False],
                         [False, False, True, True]])
    free = pick_rates(weights, dispersion, dispersion, impostor, floor=0.2)
    assert free['hps'] == 1.0  # members 0 and 3, both impostors
    trusted = np.array([[False, True, True, True],
                        [True, True, True, False]])
    rates = pick_rates(weights, dispersion, dispersion, impostor, floor=0.2,
                       trusted=trusted)
    # Members 1 and 2 instead: genuine, then an impostor.
    assert rates['hps'] == 0.5 and rates['hps_eligible'] == 0.75
    trusted[1] = False  # set 1 moves nothing: only set 0 counts
    rates = pick_rates(weights, dispersion, dispersion, impostor, floor=0.2,
                       trusted=trusted)
    assert rates['hps'] == 0.0 and rates['hps_eligible'] == 3 / 8


def _clusters_with_impostors(num_clusters=12, size=8, dim=16, seed=0):
    """Tight clusters on their own axes; the last member of every other
    cluster belongs to the next cluster's identity and sits near it."""
    rng = np.random.default_rng(seed)
    axes = np.eye(dim)[:num_clusters]
    labels = np.repeat(np.arange(num_clusters), size)
    true_ids = labels.copy()
    x = axes[labels] + 0.1 * rng.standard_normal((len(labels), dim))
    for c in range(0, num_clusters, 2):
        i = c * size + size - 1
        true_ids[i] = c + 1
        x[i] = 0.5 * axes[c] + axes[c + 1] + 0.1 * rng.standard_normal(dim)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return torch.as_tensor(x, dtype=torch.float32), labels, true_ids


def test_impostor_report_of_an_untrained_similarity_aggregator():
    from mmreid_rcl.evaluation.functional import impostor_report
    from mmreid_rcl.models.necks import SimilarityAttentionAggregator
    feats, labels, true_ids = _clusters_with_impostors()
    agg = SimilarityAttentionAggregator(16, temperature=0.1)
    agg.train()
    report = impostor_report(agg, feats, labels, true_ids, 0.5, k=4,
                             sets_per_cluster=30, seed=1)
    assert agg.training  # restored
    # Untrained, its weights ARE the similarity reference.
    assert report['attention_auc'] == pytest.approx(
        report['similarity_auc'], abs=1e-6)
    assert report['single_impostor_lowest'] == pytest.approx(
        report['similarity_single_impostor_lowest'], abs=1e-6)
    # The planted members are far from their sets: seen perfectly, never
    # picked by HPS (below the floor) while the hard rule picks them
    # whenever they are drawn.
    assert report['attention_auc'] == 1.0
    assert report['single_impostor_lowest'] == 1.0
    assert report['pick_hps'] == 0.0
    drawn = report['impostor_share']
    assert 0 < drawn < 0.2
    assert report['pick_any'] == pytest.approx(drawn)
    assert report['pick_hard'] == pytest.approx(drawn * 4, abs=1e-6)
    # The memory's prototypes give the same hard picks as the means here.
    protos = torch.nn.functional.normalize(
        torch.stack([feats[labels == c].mean(0) for c in range(12)]), dim=1)
    same = impostor_report(agg, feats, labels, true_ids, 0.5,
                           prototypes=protos, k=4, sets_per_cluster=30,
                           seed=1)
    assert same['pick_hard'] == report['pick_hard']
    # Distrusting the members least similar to their cluster's prototype
    # (here 1 in 16: the planted ones) leaves HPS only genuine members to
    # pick and changes no weight.
    trusted = impostor_report(agg, feats, labels, true_ids, 0.0, k=4,
                              sets_per_cluster=30, seed=1, distrust=1 / 16)
    untrusted = impostor_report(agg, feats, labels, true_ids, 0.0, k=4,
                                sets_per_cluster=30, seed=1)
    assert untrusted['pick_hps'] > 0 and trusted['pick_hps'] == 0.0
    assert trusted['hps_eligible'] == pytest.approx(1 - drawn)
    assert trusted['attention_auc'] == untrusted['attention_auc']
    # One camera: each camera's mean of a cluster IS its mean prototype.
    one_camera = impostor_report(agg, feats, labels, true_ids, 0.0, k=4,
                                 sets_per_cluster=30, seed=1,
                                 distrust=1 / 16,
                                 cameras=torch.zeros(len(labels)))
    assert one_camera['pick_hps'] == 0.0
    assert one_camera['hps_eligible'] == trusted['hps_eligible']
    # No cluster of k members: nothing to report.
    assert impostor_report(agg, feats, labels, true_ids, 0.5, k=9) == {}
    with pytest.raises(ValueError, match=r'expected \(N, D\) features'):
        impostor_report(agg, feats[:5], labels, true_ids, 0.5)


class _BufferOnlyAggregator(torch.nn.Module):
    """No parameters, a buffer on ``device``; records where its sets come
    from and answers on the CPU."""

    def __init__(self, device):
        super().__init__()
        self.register_buffer('scale', torch.ones((), device=device))
        self.seen = []

    def forward(self, x, mask=None):
        self.seen.append(x.device.type)
        num_sets, k, dim = x.shape
        return dict(
            weights=torch.full((num_sets, k), 1.0 / k),
            refined=torch.ones(num_sets, k, dim),
            aggregate=torch.ones(num_sets, dim))


def test_run_sets_sends_the_sets_to_a_buffer_only_aggregator():
    """The sets go to the device of the aggregator's buffers when it has
    no parameters (meta stands in for cuda), not stay on the CPU."""
    from mmreid_rcl.evaluation.functional.impostor_diagnostics import _run_sets
    agg = _BufferOnlyAggregator('meta')
    out = _run_sets(agg, torch.randn(5, 3, 4), chunk=2)
    assert agg.seen == ['meta'] * 3
    assert out['weights'].shape == (5, 3) and out['weights'].device.type == \
        'cpu'


def test_distrust_report_by_hand():
    from mmreid_rcl.evaluation.functional import (distrust_report,
                                                  other_camera_flags)
    e = torch.eye(3)
    # Cluster 0: id 0 on camera 0 (x2) and camera 1 (x1, a view between
    # the two others), an impostor (id 9) on camera 0. Cluster 1: id 1.
    x = torch.nn.functional.normalize(torch.stack([
        e[0], e[0] + 0.1 * e[2], e[0] + e[2], e[1] + 0.6 * e[0], e[1],
        e[1] + 0.1 * e[2]
    ]), dim=1)
    labels = np.array([0, 0, 0, 0, 1, 1])
    true_ids = np.array([0, 0, 0, 9, 1, 1])
    cameras = np.array([0, 0, 1, 0, 0, 0])
    assert other_camera_flags(labels, cameras).tolist() == [
        False, False, True, False, False, False]
    protos = torch.nn.functional.normalize(
        torch.stack([x[:4].mean(0), x[4:].mean(0)]), dim=1)
    report = distrust_report(x, labels, true_ids, cameras, protos, 2 / 6)
    # By the prototype the two least typical are the cross-camera view
    # and the impostor; per camera the cross-camera view is alone on its
    # camera (cos 1): the impostor (0.76 to its camera's mean) and a
    # camera-0 member of cluster 0 (0.95) go.
    by_proto = (x * protos[labels]).sum(1).argsort()[:2].tolist()
    assert sorted(by_proto) == [2, 3]
    assert report['cluster'] == dict(
        impostors_caught=1.0, impostor_share=0.5, other_camera_share=0.5,
        genuine_other_camera_lost=1.0)
    assert report['camera']['impostors_caught'] == 1.0
    assert report['camera']['genuine_other_camera_lost'] == 0.0
    assert report['camera']['other_camera_share'] == 0.0
