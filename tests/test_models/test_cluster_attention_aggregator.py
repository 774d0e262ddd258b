import math

import pytest
import torch
import torch.nn.functional as F

from mmreid_rcl.models.memories import cluster_sample_aggregation
from mmreid_rcl.models.necks import ClusterAttentionAggregator, group_into_sets
from mmreid_rcl.registry import MODELS


def _identity_aggregator(dim, scale=1.0, pre_norm=False, heads=1):
    agg = ClusterAttentionAggregator(
        dim, num_heads=heads, pre_norm=pre_norm, zero_init_out=False)
    with torch.no_grad():
        agg.qkv.weight.copy_(torch.cat([torch.eye(dim) * scale] * 3))
        agg.qkv.bias.zero_()
        agg.out_proj.weight.copy_(torch.eye(dim))
        agg.out_proj.bias.zero_()
    return agg.eval()


def _reference(agg, x, mask):
    """Literal per-set, per-head computation."""
    refined, weights, aggregates = [], [], []
    d, h = agg.embed_dims, agg.num_heads
    dh = d // h
    for b in range(x.size(0)):
        xs = x[b][mask[b]]
        n = xs.size(0)
        q, k, v = agg.qkv(agg.norm(xs)).chunk(3, dim=-1)
        out = torch.zeros(n, d)
        received = torch.zeros(n)
        for head in range(h):
            sl = slice(head * dh, (head + 1) * dh)
            a = torch.softmax(q[:, sl] @ k[:, sl].T / math.sqrt(dh), dim=1)
            out[:, sl] = a @ v[:, sl]
            received += a.sum(0) / n / h
        z = xs + agg.out_proj(out)
        w = received / received.sum()
        refined.append(z)
        weights.append(w)
        aggregates.append(F.normalize((w[:, None] * z).sum(0), dim=0))
    return refined, weights, torch.stack(aggregates)


def test_weights_sum_to_one_respect_masks_and_match_reference():
    torch.manual_seed(0)
    agg = ClusterAttentionAggregator(16, num_heads=4, zero_init_out=False)
    agg.eval()
    x = torch.randn(3, 5, 16)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]],
                        dtype=torch.bool)
    out = agg(x, mask)
    assert torch.allclose(out['weights'].sum(1), torch.ones(3))
    assert torch.all(out['weights'][~mask] == 0)
    assert torch.all(out['refined'][~mask] == 0)
    assert torch.allclose(out['aggregate'].norm(dim=1), torch.ones(3))
    # Padding content must not matter.
    x2 = x.clone()
    x2[~mask] = 100.0
    out2 = agg(x2, mask)
    torch.testing.assert_close(out2['aggregate'], out['aggregate'])
    refined, weights, aggregates = _reference(agg, x, mask)
    for b in range(3):
        torch.testing.assert_close(
            out['refined'][b][mask[b]], refined[b], atol=1e-5, rtol=0)
        torch.testing.assert_close(
            out['weights'][b][mask[b]], weights[b], atol=1e-6, rtol=0)
    torch.testing.assert_close(out['aggregate'], aggregates, atol=1e-6,
                               rtol=0)
    # Query chunking gives the same result.
    chunked = agg(x, mask, query_chunk=2)
    for key in out:
        torch.testing.assert_close(chunked[key], out[key], atol=1e-6,
                                   rtol=0)


def test_one_head_identity_projections_by_hand():
    # X = [[1, 0], [0, 1]], one head, d = 2, identity q/k/v/out, no norm:
    # scores = X X^T / sqrt(2) -> rows softmax([1/s, 0]) with s = sqrt(2).
    agg = _identity_aggregator(2)
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    out = agg(x)
    a = math.exp(1 / math.sqrt(2))
    p_self, p_other = a / (a + 1), 1 / (a + 1)
    # A = [[p_self, p_other], [p_other, p_self]]; Z = X + A X.
    z = torch.tensor([[1 + p_self, p_other], [p_other, 1 + p_self]])
    torch.testing.assert_close(out['refined'][0], z)
    # Received attention is symmetric: each sample gets 1/2.
    torch.testing.assert_close(out['weights'][0], torch.tensor([0.5, 0.5]))
    expected = F.normalize(z.mean(0), dim=0)
    torch.testing.assert_close(out['aggregate'][0], expected)


def test_planted_outlier_gets_less_weight_and_moves_aggregate_less():
    torch.manual_seed(1)
    centre = F.normalize(torch.randn(32), dim=0)
    members = F.normalize(centre + 0.2 * torch.randn(7, 32), dim=1)
    outlier = F.normalize(torch.randn(1, 32), dim=1)
    x = torch.cat([members, outlier])[None]
    agg = _identity_aggregator(32, scale=3.0)
    out = agg(x)
    w = out['weights'][0]
    assert w[-1] < w[:-1].min()
    assert w[-1] < 1 / 8
    clean_mean = F.normalize(members.mean(0), dim=0)
    plain_mean = F.normalize(x[0].mean(0), dim=0)
    # The aggregate stays closer to the clean centre than the mean does.
    assert (out['aggregate'][0] @ clean_mean) > (plain_mean @ clean_mean)


def test_group_into_sets():
    labels = torch.tensor([3, 1, 3, 3, 1, 7])
    index, mask, set_labels = group_into_sets(labels)
    assert set_labels.tolist() == [1, 3, 7]
    assert mask.sum(1).tolist() == [2, 3, 1]
    assert index[0][mask[0]].tolist() == [1, 4]
    assert index[1][mask[1]].tolist() == [0, 2, 3]
    assert index[2][mask[2]].tolist() == [5]


def test_csa_init_chunks_clusters_of_any_size_in_bounded_memory():
    torch.manual_seed(0)
    agg = ClusterAttentionAggregator(8, num_heads=2, zero_init_out=False)
    sizes = [1, 3, 5, 40]
    labels = torch.cat(
        [torch.full((n, ), c, dtype=torch.long) for c, n in enumerate(sizes)])
    perm = torch.randperm(labels.numel())
    labels = labels[perm]
    feats = F.normalize(torch.randn(labels.numel(), 8), dim=1)
    small = cluster_sample_aggregation(
        agg, feats, labels, max_attention_elements=64)
    big = cluster_sample_aggregation(agg, feats, labels)
    torch.testing.assert_close(small, big, atol=1e-5, rtol=0)
    for c in range(len(sizes)):
        members = feats[labels == c]
        ref = agg.eval()(members[None])['aggregate'][0]
        torch.testing.assert_close(big[c], ref, atol=1e-5, rtol=0)
    # A singleton's prototype is the sample itself (with Z = X at init).
    zero_out = ClusterAttentionAggregator(8, num_heads=2)
    protos = cluster_sample_aggregation(zero_out, feats, labels)
    torch.testing.assert_close(protos[0], feats[labels == 0][0])
    assert zero_out.training  # restored after its evaluation mode


def _rcl_model(saa_detach=True):
    return MODELS.build(
        dict(
            type='RCL',
            backbone=dict(type='ReIDResNet', depth=18),
            neck=dict(type='ReIDNeck', in_channels=512),
            aggregator=dict(
                type='ClusterAttentionAggregator', embed_dims=512),
            detach=saa_detach,
            head=dict(
                type='ClusterContrastHead',
                memory=dict(type='ClusterMemory', feat_dim=512))))


@pytest.mark.parametrize('detach', [True, False])
def test_saa_gradients_reach_aggregator_and_backbone_only_if_asked(detach):
    from mmreid_rcl.structures import ReIDDataSample
    torch.manual_seed(0)
    model = _rcl_model(saa_detach=detach)
    feats = F.normalize(torch.randn(8, 512), dim=1)
    model.set_clusters(feats, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]), 0)
    samples = [ReIDDataSample().set_identity(0, 0, sample_idx=i)
               for i in range(8)]
    losses = model(torch.randn(8, 3, 64, 32), samples, mode='loss')
    assert set(losses) >= {'loss_cc', 'loss_saa'}
    model.zero_grad()
    losses['loss_saa'].backward()
    assert model.aggregator.qkv.weight.grad.abs().sum() > 0
    grad = model.backbone.conv1.weight.grad
    reached = grad is not None and bool(grad.abs().sum() > 0)
    assert reached is (not detach)


def test_rcl_requires_an_aggregator():
    with pytest.raises(ValueError, match='aggregator'):
        MODELS.build(
            dict(
                type='RCL',
                backbone=dict(type='ReIDResNet', depth=18),
                neck=dict(type='ReIDNeck', in_channels=512),
                aggregator=None,
                head=dict(
                    type='ClusterContrastHead',
                    memory=dict(type='ClusterMemory', feat_dim=512))))
