"""RCL: the set losses, CSA, HPS and its warm-up, in one model."""
import pytest
import torch
import torch.nn.functional as F

from mmreid_rcl.models.memories import (MeanMemoryUpdate,
                                        cluster_sample_aggregation)
from mmreid_rcl.registry import MODELS
from mmreid_rcl.structures import ReIDDataSample
from mmreid_rcl.utils import register_all_modules

register_all_modules()


def _rcl(**kwargs):
    cfg = dict(
        type='RCL',
        backbone=dict(type='MobileNetV2'),
        neck=dict(type='ReIDNeck', in_channels=1280, pooling='gem'),
        head=dict(
            type='ClusterContrastHead',
            memory=dict(type='ClusterMemory', feat_dim=1280, momentum=0.5)),
        aggregator=dict(type='SimilarityAttentionAggregator',
                        embed_dims=1280))
    cfg.update(kwargs)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def _samples(n):
    return [ReIDDataSample().set_identity(0, 0, sample_idx=i)
            for i in range(n)]


@pytest.fixture(scope='module')
def batch():
    torch.manual_seed(1)
    return torch.randn(8, 3, 64, 32), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])


def _fixed_features(model, labels, seed=2):
    """Let the model "extract" distinct features around two directions
    (a randomly initialised backbone gives nearly identical ones)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(2, 1280, generator=g)
    feats = F.normalize(
        centres[labels] + 0.8 * torch.randn(8, 1280, generator=g), dim=1)
    model.extract_feat = lambda inputs: feats.clone().requires_grad_()
    return feats


def _slow_hps(feats, labels, floor_ratio):
    """HPS by hand: per label, the similarity weights of the untrained
    aggregator (softmax of the mean cosine to the other members / 0.1),
    then the most dispersed member at or above floor / n."""
    picks = []
    for label in labels.unique().tolist():
        members = (labels == label).nonzero().flatten().tolist()
        x = feats[members]
        sims = x @ x.t()
        mean_sim = (sims.sum(1) - sims.diag()) / (len(members) - 1)
        w = torch.softmax(mean_sim / 0.1, 0)
        agg = F.normalize((w[:, None] * x).sum(0), dim=0)
        disp = 1 - x @ agg
        ok = [i for i in range(len(members))
              if w[i] >= floor_ratio / len(members)]
        picks.append(members[max(ok, key=lambda i: (disp[i], -i))])
    return picks


@pytest.mark.parametrize('warmup', [0, 2])
def test_hps_and_its_warmup(batch, warmup):
    x, labels = batch
    model = _rcl(hps=dict(floor=0.5, warmup_epochs=warmup), csa=None).eval()
    feats = _fixed_features(model, labels)
    for epoch in (0, 1, 2, 3):
        model.set_clusters(feats, labels, epoch=epoch)
        before = model.memory.prototypes.clone()
        losses = model(x, _samples(8), mode='loss')
        assert set(losses) == {'loss_cc', 'acc_cc', 'loss_saa'}
        if epoch < warmup:  # the memory's own rule: the mean update
            expected = MeanMemoryUpdate()(before, feats, labels, 0.5)
        else:  # one momentum step toward each label's hard positive
            picks = _slow_hps(feats, labels, 0.5)
            expected = before.clone()
            for row, i in zip(labels.unique(), picks):
                expected[row] = F.normalize(
                    0.5 * before[row] + 0.5 * feats[i], dim=0)
        torch.testing.assert_close(model.memory.prototypes, expected,
                                   atol=1e-5, rtol=0)
        assert model.hps_active(epoch) == (epoch >= warmup)


def test_csa_installs_the_aggregates_and_none_the_means(batch):
    x, labels = batch
    on = _rcl().eval()
    feats = _fixed_features(on, labels)
    on.set_clusters(feats, labels, epoch=0)
    torch.testing.assert_close(
        on.memory.prototypes,
        cluster_sample_aggregation(on.aggregator, feats, labels))
    off = _rcl(csa=None).eval()
    off.set_clusters(feats, labels, epoch=0)
    means = F.normalize(
        torch.stack([feats[:4].mean(0), feats[4:].mean(0)]), dim=1)
    torch.testing.assert_close(off.memory.prototypes, means, atol=1e-6,
                               rtol=0)
    # Similarity weights are not uniform: CSA differs from the means.
    assert not torch.allclose(on.memory.prototypes, means, atol=1e-6)


def test_set_losses_come_from_the_config(batch):
    x, labels = batch
    model = _rcl(set_losses=[
        dict(type='SetContrastiveLoss', loss_weight=0.5),
        dict(type='PlantedImpostorLoss', neighbour='set_mean'),
        dict(type='ConsensusAggregateLoss')
    ])
    model.set_clusters(
        F.normalize(torch.randn(8, 1280), dim=1), labels, epoch=0)
    losses = model(x, _samples(8), mode='loss')
    assert {'loss_saa', 'loss_planted', 'loss_consensus',
            'planted_lowest'} <= set(losses)
    # detach=True: the set losses train the aggregator, not the backbone.
    model.zero_grad()
    (losses['loss_planted'] + losses['loss_consensus']).backward()
    assert model.backbone.features[0][0].weight.grad is None
    clash = _rcl(set_losses=[dict(type='SetContrastiveLoss')] * 2)
    clash.set_clusters(
        F.normalize(torch.randn(8, 1280), dim=1), labels, epoch=0)
    with pytest.raises(ValueError, match=r"both return \['loss_saa'\]"):
        clash(x, _samples(8), mode='loss')


def test_set_loss_reaches_the_backbone_without_detach(batch):
    x, labels = batch
    model = _rcl(detach=False, hps=None, csa=None)
    model.set_clusters(
        F.normalize(torch.randn(8, 1280), dim=1), labels, epoch=0)
    losses = model(x, _samples(8), mode='loss')
    losses['loss_saa'].backward()
    assert model.backbone.features[0][0].weight.grad is not None


@pytest.mark.parametrize('kwargs, match', [
    (dict(hps=dict(floor=1.5)), 'floor must be in'),
    (dict(hps=dict(floor=True)), 'floor must be in'),
    (dict(hps=dict(warmup_epochs=1.5)), 'warmup_epochs must be an integer'),
    (dict(hps=dict(flor=0.5)), r"unknown hps settings \['flor'\]"),
    (dict(csa=dict(budget=3)), r"unknown csa settings \['budget'\]"),
    (dict(csa=True), 'csa must be a dict'),
    (dict(set_losses=[]), 'at least one set loss'),
    (dict(aggregator=None), 'needs an aggregator'),
])
def test_bad_settings(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _rcl(**kwargs)


def test_hps_floor_property():
    assert _rcl().hps_floor == 0.5
    assert _rcl(hps=None).hps_floor is None
    assert not _rcl(hps=None).hps_active(5)
