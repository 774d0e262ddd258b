"""RCL: the set losses, CSA, HPS and its warm-up, in one model."""
import pytest
import torch
import torch.nn.functional as F

from mmreid_rcl.models.memories import (MeanMemoryUpdate,
                                        cluster_sample_aggregation,
                                        cluster_trust)
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


def _slow_hps(feats, labels, floor_ratio, trusted=None):
    """HPS by hand: per label, the similarity weights of the untrained
    aggregator (softmax of the mean cosine to the other members / 0.1),
    then the most dispersed member at or above floor / n (and trusted;
    None for a label with no such member)."""
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
              if w[i] >= floor_ratio / len(members) and (
                  trusted is None or trusted[members[i]])]
        picks.append(members[max(ok, key=lambda i: (disp[i], -i))]
                     if ok else None)
    return picks


def _moved(before, feats, labels, picks, momentum=0.5):
    """The memory after one momentum step of each label toward its pick
    (a label without a pick keeps its prototype)."""
    expected = before.clone()
    for row, i in zip(labels.unique(), picks):
        if i is not None:
            expected[row] = F.normalize(
                momentum * before[row] + (1 - momentum) * feats[i], dim=0)
    return expected


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
            expected = _moved(before, feats, labels,
                              _slow_hps(feats, labels, 0.5))
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
    (dict(hps=dict(distrust=1.0)), r'distrust must be a share in \[0, 1\)'),
    (dict(hps=dict(distrust='0.2')), 'distrust must be a share'),
    (dict(hps=dict(trust_by='camra')), 'trust_by must be one of'),
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


def _slow_trust(feats, labels, prototypes, share, cameras=None):
    """Row by row: each clustered image's cosine to its prototype (or to
    the normalised mean of its cluster's images of its camera); the
    floor(share * M) lowest of the M clustered ones distrusted."""
    clustered = [i for i in range(len(labels)) if labels[i] >= 0]
    cos = {}
    for i in clustered:
        if cameras is None:
            ref = prototypes[labels[i]]
        else:
            ref = F.normalize(sum(
                feats[j] for j in clustered
                if labels[j] == labels[i] and cameras[j] == cameras[i]),
                              dim=0)
        cos[i] = float(feats[i] @ ref)
    lowest = sorted(clustered, key=lambda i: cos[i])[:int(share *
                                                          len(clustered))]
    return [i in cos and i not in lowest for i in range(len(labels))]


@pytest.mark.parametrize('share', [0.0, 0.1, 0.25, 0.5])
def test_cluster_trust_against_a_slow_reference(share):
    g = torch.Generator().manual_seed(3)
    feats = F.normalize(torch.randn(40, 16, generator=g), dim=1)
    labels = torch.randint(-1, 4, (40, ), generator=g)
    protos = F.normalize(torch.randn(4, 16, generator=g), dim=1)
    expected = _slow_trust(feats, labels, protos, share)
    cameras = torch.randint(3, 7, (40, ), generator=g)  # not from 0
    per_camera = _slow_trust(feats, labels, protos, share, cameras)
    for chunk in (7, 65536):
        got = cluster_trust(feats, labels, protos, share, chunk=chunk)
        assert got.tolist() == expected
        got = cluster_trust(feats, labels, protos, share, cameras=cameras,
                            chunk=chunk)
        assert got.tolist() == per_camera
    if share >= 0.25:
        assert per_camera != expected
    # Hand-made: two clusters, cosines 1, 0.6, 0.8 and 0, 0.5; outlier.
    e = torch.eye(2)
    x = torch.stack([e[0], F.normalize(torch.tensor([0.6, 0.8]), dim=0),
                     F.normalize(torch.tensor([0.8, 0.6]), dim=0), e[0],
                     F.normalize(torch.tensor([1.0, 3 ** 0.5]), dim=0),
                     e[1]])
    lab = torch.tensor([0, 0, 0, 1, 1, -1])
    assert cluster_trust(x, lab, e, 0.4).tolist() == [
        True, False, True, False, True, False]
    with pytest.raises(ValueError, match='distrust must be in'):
        cluster_trust(x, lab, e, 1.0)
    with pytest.raises(ValueError, match='expected'):
        cluster_trust(x, lab[:3], e, 0.1)
    with pytest.raises(ValueError, match=r'expected \(N, \) cameras'):
        cluster_trust(x, lab, e, 0.1, cameras=torch.zeros(3))
    # Per camera: image 1 is alone on camera 1 of cluster 0 (cos 1), 0 and
    # 2 at 0.95 to their mean; cluster 1's two at 0.87 are the lowest.
    cams = torch.tensor([0, 1, 0, 0, 0, 0])
    assert cluster_trust(x, lab, e, 0.4, cameras=cams).tolist() == [
        True, True, True, False, False, False]


def test_hps_never_picks_a_distrusted_member(batch):
    x, labels = batch
    model = _rcl(hps=dict(floor=0.5, distrust=0.25), csa=None).eval()
    feats = _fixed_features(model, labels)
    model.set_clusters(feats, labels, epoch=0)
    trusted = cluster_trust(feats, labels, model.memory.prototypes, 0.25)
    assert model.hps_trusted.tolist() == trusted.tolist()
    assert int((~trusted).sum()) == 2
    free_picks = _slow_hps(feats, labels, 0.5)
    # Distrust each label's free pick: HPS must take another member; and
    # a label with no trusted member keeps its prototype.
    forced = torch.ones(8, dtype=torch.bool)
    forced[free_picks] = False
    for trusted in (forced, labels == 1):
        model.hps_trusted = trusted
        before = model.memory.prototypes.clone()
        model(x, _samples(8), mode='loss')
        picks = _slow_hps(feats, labels, 0.5, trusted)
        torch.testing.assert_close(model.memory.prototypes,
                                   _moved(before, feats, labels, picks),
                                   atol=1e-5, rtol=0)
        if trusted is forced:
            assert not set(picks) & set(free_picks)
    assert picks[0] is None and picks[1] is not None


def test_trust_is_model_state(batch, tmp_path):
    _, labels = batch
    model = _rcl(hps=dict(distrust=0.25))
    model.set_clusters(F.normalize(torch.randn(8, 1280), dim=1), labels,
                       epoch=0)
    torch.save(model.state_dict(), tmp_path / 'm.pth')
    fresh = _rcl(hps=dict(distrust=0.25))
    assert fresh.hps_trusted.numel() == 0
    fresh.load_state_dict(torch.load(tmp_path / 'm.pth'))
    assert fresh.hps_trusted.tolist() == model.hps_trusted.tolist()
    assert _rcl().hps_distrust == 0.0 and _rcl(hps=None).hps_distrust == 0.0
    assert not _rcl(hps=dict(trust_by='camera')).needs_cameras
    assert _rcl(hps=dict(distrust=0.1, trust_by='camera')).needs_cameras
    off = _rcl()
    off.set_clusters(F.normalize(torch.randn(8, 1280), dim=1), labels,
                     epoch=0)
    assert off.hps_trusted.numel() == 0


def test_trust_by_camera_needs_the_cameras(batch):
    _, labels = batch
    model = _rcl(hps=dict(distrust=0.25, trust_by='camera'))
    feats = F.normalize(torch.randn(8, 1280), dim=1)
    with pytest.raises(ValueError, match="trust_by='camera' needs"):
        model.set_clusters(feats, labels, epoch=0)
    cameras = torch.tensor([0, 0, 1, 1, 0, 1, 1, 1])
    model.set_clusters(feats, labels, epoch=0, cameras=cameras)
    assert model.hps_trusted.tolist() == cluster_trust(
        feats, labels, model.memory.prototypes, 0.25,
        cameras=cameras).tolist()
