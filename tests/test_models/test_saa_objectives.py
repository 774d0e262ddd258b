import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmreid_rcl.models.losses import (ConsensusAggregateLoss,
                                      PlantedImpostorLoss, consensus_targets,
                                      plant_impostors)
from mmreid_rcl.models.memories import ClusterMemory
from mmreid_rcl.models.necks import SimilarityAttentionAggregator
from mmreid_rcl.registry import MODELS
from mmreid_rcl.utils import register_all_modules

register_all_modules()


class UniformAggregator(nn.Module):
    """Equal weights, plain mean: what the SAA loss alone converges to."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x, mask):
        w = mask.float() / mask.sum(1, keepdim=True)
        agg = F.normalize((w[..., None] * x).sum(1), dim=1)
        return dict(weights=w, aggregate=agg, refined=x)


class LastMemberOutAggregator(UniformAggregator):
    """Ignores the last real member of every set: a perfect impostor
    detector for planted sets, whose planted member comes last."""

    def forward(self, x, mask):
        last = mask.cumsum(1) == mask.sum(1, keepdim=True)
        keep = mask & ~last
        w = keep.float() / keep.sum(1, keepdim=True)
        agg = F.normalize((w[..., None] * x).sum(1), dim=1)
        return dict(weights=w, aggregate=agg, refined=x)


def _batch(seed=0, sizes=(4, 4, 3, 4, 1)):
    g = torch.Generator().manual_seed(seed)
    labels = torch.cat([
        torch.full((n, ), c, dtype=torch.long) for c, n in enumerate(sizes)
    ])
    labels = labels[torch.randperm(labels.numel(), generator=g)]
    feats = F.normalize(torch.randn(labels.numel(), 6, generator=g), dim=1)
    return feats, labels


def _slow_plant(feats, labels, m, prototypes, replace, min_genuine):
    """Set by set: donor, own members kept and members planted."""
    x = F.normalize(feats, dim=1)
    labs = sorted(set(labels.tolist()))
    members = {
        c: [i for i in range(len(labels)) if labels[i] == c]
        for c in labs
    }
    mean = {c: F.normalize(x[members[c]].sum(0), dim=0) for c in labs}
    ref = mean if prototypes is None else {
        c: F.normalize(prototypes[r], dim=0)
        for r, c in enumerate(labs)
    }
    sets = []
    for c in labs:
        donors = [t for t in labs if t != c and len(members[t]) >= m]
        if not donors:
            continue
        donor = max(donors, key=lambda t: float(ref[c] @ ref[t]))
        own = members[c][:len(members[c]) - m] if replace else members[c]
        if len(own) < min_genuine:
            continue
        planted = sorted(
            members[donor], key=lambda i: -float(x[i] @ mean[c]))[:m]
        sets.append((c, donor, own, planted))
    return sets


def _rows(sets):
    rows = []
    for r in range(sets['mask'].size(0)):
        own = sets['mask'][r] & ~sets['planted'][r]
        rows.append((int(sets['set_labels'][r]), int(sets['donor_labels'][r]),
                     sets['index'][r][own].tolist(),
                     sets['index'][r][sets['planted'][r]].tolist()))
    return rows


@pytest.mark.parametrize('m,replace,min_genuine,use_protos',
                         [(1, True, 2, False), (1, True, 2, True),
                          (2, False, 1, False), (2, True, 2, True),
                          (1, True, 3, False)])
def test_plant_hardest_matches_set_by_set_reference(m, replace, min_genuine,
                                                    use_protos):
    feats, labels = _batch()
    protos = F.normalize(torch.randn(5, 6), dim=1) if use_protos else None
    sets = plant_impostors(
        feats, labels, m, protos, choice='hardest', replace=replace,
        min_genuine=min_genuine)
    assert _rows(sets) == _slow_plant(feats, labels, m, protos, replace,
                                      min_genuine)
    assert torch.all(sets['planted'].sum(1) == m)
    assert torch.all(sets['index'][~sets['mask']] == 0)


def test_plant_random_draws_from_the_nearest_set_reproducibly():
    feats, labels = _batch(1, sizes=(4, 4, 4, 4))
    a = plant_impostors(
        feats, labels, generator=torch.Generator().manual_seed(3))
    b = plant_impostors(
        feats, labels, generator=torch.Generator().manual_seed(3))
    for key in a:
        assert torch.equal(a[key], b[key])
    hardest = plant_impostors(feats, labels, choice='hardest')
    assert torch.equal(a['donor_labels'], hardest['donor_labels'])
    for c, donor, own, planted in _rows(a):
        assert len(own) == 3 and len(planted) == 1
        assert all(labels[i] == c for i in own)
        assert all(labels[i] == donor for i in planted)
    with pytest.raises(ValueError, match='choice must be'):
        plant_impostors(feats, labels, choice='nearest')
    with pytest.raises(ValueError, match=r'prototypes must be \(S, D\)'):
        plant_impostors(feats, labels, prototypes=torch.randn(3, 6))


def _slow_planted_losses(agg, feats, sets, margin):
    kls, hinges = [], []
    for c, donor, own, planted in sets:
        out = agg(feats[own + planted][None])
        w = out['weights'][0]
        n = len(own)
        kls.append(-w[:n].log().mean() - math.log(n))
        s = out['scores'][0]
        for i in range(n):
            for j in range(n, n + len(planted)):
                hinges.append(F.relu(margin - (s[i] - s[j])))
    return torch.stack(kls).mean(), torch.stack(hinges).mean()


def test_planted_loss_matches_set_by_set_reference():
    torch.manual_seed(0)
    feats, labels = _batch(2)
    agg = SimilarityAttentionAggregator(6, rank=2, mlp_hidden=3)
    with torch.no_grad():
        agg.sim_u.normal_()
        agg.mlp[2].weight.normal_()
    memory = ClusterMemory(feat_dim=6, temperature=0.05)
    memory.initialise(feats, labels)
    loss_fn = MODELS.build(
        dict(
            type='PlantedImpostorLoss',
            choice='hardest',
            margin=0.2,
            margin_weight=0.5,
            contrast_weight=2.0,
            loss_weight=3.0))
    losses = loss_fn(agg, feats, labels, memory)
    sets = _slow_plant(feats, labels, 1, memory.prototypes, True, 2)
    kl, hinge = _slow_planted_losses(agg, feats, sets, 0.2)
    torch.testing.assert_close(losses['loss_planted'], 3 * kl)
    torch.testing.assert_close(losses['loss_planted_margin'], 0.5 * hinge)
    aggregates = torch.stack(
        [agg(feats[own + planted][None])['aggregate'][0]
         for _, _, own, planted in sets])
    contrast = F.cross_entropy(
        aggregates @ memory.prototypes.T / 0.05,
        torch.tensor([c for c, *_ in sets]))
    torch.testing.assert_close(losses['loss_planted_contrast'],
                               2 * contrast)
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    assert agg.sim_u.grad.abs().sum() > 0
    assert 0 <= float(losses['planted_lowest']) <= 1


def test_planted_loss_is_zero_for_a_perfect_detector_and_log_ratio_for_mean():
    feats, labels = _batch(3, sizes=(4, 4, 4))
    loss_fn = PlantedImpostorLoss(choice='hardest', neighbour='set_mean')
    perfect = loss_fn(LastMemberOutAggregator(), feats, labels)
    assert float(perfect['loss_planted']) == pytest.approx(0, abs=1e-6)
    assert float(perfect['planted_lowest']) == 1
    uniform = loss_fn(UniformAggregator(), feats, labels)
    # Own members weigh 1/4 instead of 1/3: KL = log(4/3).
    assert float(uniform['loss_planted']) == pytest.approx(math.log(4 / 3))
    assert float(uniform['planted_lowest']) == 0


def test_planted_loss_without_a_donor_and_bad_settings():
    agg = SimilarityAttentionAggregator(6)
    feats, labels = _batch(4, sizes=(4, ))
    losses = PlantedImpostorLoss(margin=0.1)(agg, feats, labels)
    assert losses['loss_planted'].item() == 0
    assert losses['loss_planted_margin'].item() == 0
    losses['loss_planted'].backward()
    assert agg.log_temperature.grad is not None
    with pytest.raises(ValueError, match='needs the cluster memory'):
        PlantedImpostorLoss(contrast_weight=1.0)(agg, feats, labels)
    with pytest.raises(ValueError, match='neighbour must be'):
        PlantedImpostorLoss(neighbour='nearest')
    with pytest.raises(ValueError, match='choice must be'):
        PlantedImpostorLoss(choice='nearest')
    with pytest.raises(ValueError, match='must be >= 1'):
        PlantedImpostorLoss(num_planted=0)


def test_consensus_targets_match_loops():
    g = torch.Generator().manual_seed(5)
    x = F.normalize(torch.randn(4, 5, 6, generator=g), dim=-1)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0],
                         [0, 1, 1, 1, 1]], dtype=torch.bool)
    for target, dropped in (('trimmed', 1), ('trimmed', 2), ('medoid', 1)):
        out = consensus_targets(x, mask, target, dropped)
        for s in range(4):
            xs = x[s][mask[s]]
            n = len(xs)
            typical = [
                float(sum(xs[i] @ xs[j] for j in range(n) if j != i)) /
                (n - 1) for i in range(n)
            ]
            order = sorted(range(n), key=lambda i: -typical[i])
            keep = n - min(dropped, max(n - 2, 0))
            chosen = order[:1] if target == 'medoid' else order[:keep]
            ref = F.normalize(xs[chosen].sum(0), dim=0)
            torch.testing.assert_close(out[s], ref, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match='target must be'):
        consensus_targets(x, mask, 'median')


def test_consensus_loss_rewards_ignoring_the_outlier():
    a, b, c = torch.eye(6)[:3]
    # Three members close to a, one far: the outlier is last.
    members = F.normalize(
        torch.stack([a + 0.1 * b, a - 0.1 * b, a + 0.1 * c, c]), dim=1)
    feats = torch.cat([members, F.normalize(members + 0.3, dim=1)])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    loss_fn = MODELS.build(dict(type='ConsensusAggregateLoss'))
    mean_loss = loss_fn(UniformAggregator(), feats, labels)['loss_consensus']
    robust = loss_fn(LastMemberOutAggregator(), feats,
                     labels)['loss_consensus']
    assert float(robust) == pytest.approx(0, abs=1e-6)
    assert float(mean_loss) > 0.01
    # Against the loop: 1 - cos(aggregate, target), mean over sets.
    agg = SimilarityAttentionAggregator(6)
    loss = loss_fn(agg, feats, labels)['loss_consensus']
    ref = []
    for s in (0, 1):
        xs = feats[4 * s:4 * s + 4]
        target = consensus_targets(xs[None], torch.ones(1, 4, dtype=bool))
        ref.append(1 - agg(xs[None])['aggregate'][0] @ target[0])
    torch.testing.assert_close(loss, torch.stack(ref).mean())
    loss.backward()
    assert agg.log_temperature.grad is not None
    # Only sets of at least three members are scored.
    small = loss_fn(agg, feats[:2], labels[:2])['loss_consensus']
    assert small.item() == 0
    with pytest.raises(ValueError, match='min_members >= 3'):
        ConsensusAggregateLoss(min_members=2)


def test_zero_losses_are_tensors_on_a_buffer_only_aggregators_device():
    """With nothing to score, the set losses give a zero that is a tensor
    (the runner sums tensors) on the aggregator's device also when the
    aggregator has no parameters (it gave the float 0.0)."""
    agg = SimilarityAttentionAggregator(
        6, mlp_hidden=0, learn_temperature=False)
    assert not list(agg.parameters())
    feats, labels = _batch(4, sizes=(4, ))
    planted = PlantedImpostorLoss()(agg, feats, labels)['loss_planted']
    small = ConsensusAggregateLoss()(agg, feats[:2],
                                     labels[:2])['loss_consensus']
    for zero in (planted, small):
        assert isinstance(zero, torch.Tensor) and zero.item() == 0
    # Meta stands in for cuda: the zero follows the aggregator's buffers.
    assert PlantedImpostorLoss.zero(agg.to('meta')).device.type == 'meta'
