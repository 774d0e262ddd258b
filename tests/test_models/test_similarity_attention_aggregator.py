import pytest
import torch
import torch.nn.functional as F

from mmreid_rcl.evaluation.functional.impostor_diagnostics import \
    mutual_similarity_weights
from mmreid_rcl.models.memories import (cluster_sample_aggregation,
                                        hard_positive_picks)
from mmreid_rcl.models.necks import SimilarityAttentionAggregator
from mmreid_rcl.registry import MODELS
from mmreid_rcl.structures import ReIDDataSample
from mmreid_rcl.utils import register_all_modules

register_all_modules()


def _trained_looking(dim=8, rank=3, hidden=5, seed=0):
    """An aggregator whose corrections are all non-zero."""
    torch.manual_seed(seed)
    agg = SimilarityAttentionAggregator(
        dim, rank=rank, mlp_hidden=hidden, temperature=0.3)
    with torch.no_grad():
        if rank:
            agg.sim_u.normal_()
        if hidden:
            agg.mlp[2].weight.normal_()
            agg.mlp[2].bias.fill_(0.7)
    return agg


def _reference(agg, x, mask):
    """Member by member, with W built explicitly."""
    d = agg.embed_dims
    w_mat = torch.eye(d)
    if agg.rank:
        uv = agg.sim_u @ agg.sim_v.T
        w_mat = w_mat + (uv + uv.T) / 2
    scores, weights, aggregates = [], [], []
    for b in range(x.size(0)):
        xs = F.normalize(x[b][mask[b]], dim=1)
        n = xs.size(0)
        s = torch.zeros(n)
        for i in range(n):
            others = [j for j in range(n) if j != i]
            if not others:
                continue
            s[i] = sum(xs[i] @ w_mat @ xs[j] for j in others) / len(others)
            if agg.mlp_hidden:
                c = xs[others].mean(0)
                s[i] = s[i] + agg.mlp(torch.cat([xs[i] - c, xs[i] * c]))[0]
        w = torch.softmax(s / agg.temperature, dim=0)
        scores.append(s)
        weights.append(w)
        aggregates.append(F.normalize((w[:, None] * xs).sum(0), dim=0))
    return scores, weights, torch.stack(aggregates)


@pytest.mark.parametrize('rank,hidden', [(3, 5), (0, 5), (3, 0), (0, 0)])
def test_matches_member_by_member_reference(rank, hidden):
    agg = _trained_looking(rank=rank, hidden=hidden).eval()
    x = torch.randn(4, 5, 8) * 3
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0],
                         [0, 1, 1, 0, 1]], dtype=torch.bool)
    with torch.no_grad():
        out = agg(x, mask)
        scores, weights, aggregates = _reference(agg, x, mask)
    for b in range(4):
        torch.testing.assert_close(
            out['scores'][b][mask[b]], scores[b], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            out['weights'][b][mask[b]], weights[b], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out['aggregate'], aggregates, atol=1e-6,
                               rtol=1e-5)
    assert torch.all(out['weights'][~mask] == 0)
    assert torch.all(out['scores'][~mask] == 0)
    assert torch.all(out['refined'][~mask] == 0)
    torch.testing.assert_close(out['weights'].sum(1), torch.ones(4))
    # A lone member takes all the weight.
    assert out['weights'][2, 0] == 1
    # Padding content does not matter; chunked scoring is the same.
    x2 = x.clone()
    x2[~mask] = 100.0
    with torch.no_grad():
        out2 = agg(x2, mask)
        chunked = agg(x, mask, query_chunk=2)
    for key in out:
        torch.testing.assert_close(out2[key], out[key], atol=1e-6, rtol=0)
        torch.testing.assert_close(
            chunked[key], out[key], atol=1e-6, rtol=0)


def test_untrained_weights_are_the_similarity_reference():
    torch.manual_seed(1)
    agg = MODELS.build(
        dict(type='SimilarityAttentionAggregator', embed_dims=16))
    x = F.normalize(torch.randn(6, 4, 16), dim=-1)
    with torch.no_grad():
        out = agg(x)
    ref = mutual_similarity_weights(x.double().numpy(), temperature=0.1)
    torch.testing.assert_close(
        out['weights'].double(), torch.from_numpy(ref), atol=1e-6, rtol=0)
    torch.testing.assert_close(out['refined'], x)
    # A member far from three near-identical ones weighs least.
    a, b = torch.eye(16)[:2]
    out = agg(torch.stack([a, a, a, b])[None])
    assert out['weights'][0].argmin() == 3


def test_corrections_and_temperature_get_gradients():
    torch.manual_seed(0)
    agg = SimilarityAttentionAggregator(8, rank=2, mlp_hidden=4)
    x = torch.randn(3, 4, 8)
    loss = -agg(x)['weights'][:, 0].log().sum()
    loss.backward()
    for name in ('sim_u', 'log_temperature'):
        assert getattr(agg, name).grad.abs().sum() > 0, name
    assert agg.mlp[2].weight.grad.abs().sum() > 0
    fixed = SimilarityAttentionAggregator(
        8, learn_temperature=False, temperature=0.2)
    assert 'log_temperature' not in dict(fixed.named_parameters())
    assert fixed.temperature.item() == pytest.approx(0.2)
    # The temperature never drops below its floor.
    with torch.no_grad():
        agg.log_temperature.fill_(-20.0)
    assert agg.temperature.item() == pytest.approx(0.01)


def test_bad_input_and_settings():
    agg = SimilarityAttentionAggregator(8)
    with pytest.raises(ValueError, match=r'expected \(B, n, 8\)'):
        agg(torch.randn(4, 8))
    with pytest.raises(ValueError, match='mask must be'):
        agg(torch.randn(2, 3, 8), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match='at least one sample'):
        agg(torch.randn(1, 3, 8), torch.zeros(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match='rank, mlp_hidden >= 0'):
        SimilarityAttentionAggregator(8, rank=-1)
    with pytest.raises(ValueError, match='min_temperature'):
        SimilarityAttentionAggregator(8, temperature=0.001)
    with pytest.raises(ValueError, match="sink must be True or False"):
        SimilarityAttentionAggregator(8, sink='yes')
    with pytest.raises(ValueError, match="sink_offset='0.1'"):
        SimilarityAttentionAggregator(8, sink=True, sink_offset='0.1')


def _sinked(agg, **kwargs):
    """A copy of ``agg`` with a sink and the same parameters."""
    out = SimilarityAttentionAggregator(
        agg.embed_dims, rank=agg.rank, mlp_hidden=agg.mlp_hidden,
        temperature=0.3, sink=True, **kwargs)
    out.load_state_dict(agg.state_dict(), strict=False)
    return out


def test_sink_weights_match_a_reference_and_keep_the_order():
    plain = _trained_looking().eval()
    agg = _sinked(plain, sink_offset=0.05)
    x = torch.randn(4, 5, 8) * 3
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0],
                         [0, 1, 1, 0, 1]], dtype=torch.bool)
    with torch.no_grad():
        scores, weights, aggregates = _reference(plain, x, mask)
        out = agg(x, mask)
        ref_plain = plain(x, mask)
    # The level: the mean score of the members of sets of 2 or more.
    level = torch.cat([s for b, s in enumerate(scores) if mask[b].sum() > 1
                       ]).mean()
    t = plain.temperature
    for b in range(4):
        e = (scores[b] / t).exp()
        sink = 0.0 if mask[b].sum() < 2 else ((level + 0.05) / t).exp()
        torch.testing.assert_close(
            out['weights'][b][mask[b]], e / (sink + e.sum()), atol=1e-6,
            rtol=1e-5)
        # Same order as the plain softmax, and the same aggregate.
        assert torch.equal(out['weights'][b][mask[b]].argsort(),
                           weights[b].argsort())
    torch.testing.assert_close(out['aggregate'], ref_plain['aggregate'],
                               atol=1e-6, rtol=1e-5)
    assert out['weights'][2, 0] == 1  # a lone member is not judged
    assert torch.all(out['weights'].sum(1)[[0, 1, 3]] < 1)


def test_sink_level_is_the_calls_own_mean_score():
    plain = _trained_looking()
    agg = _sinked(plain)
    x1, x2 = torch.randn(3, 4, 8), torch.randn(3, 4, 8)
    with torch.no_grad():
        s2 = plain(x2)['scores']
        e = (s2 / plain.temperature).exp()
        expected = e / ((s2.mean() / plain.temperature).exp() +
                        e.sum(1, True))
        # Nothing is carried over from an earlier call, in either mode.
        for mode in (True, False):
            agg.train(mode)
            agg(x1)
            torch.testing.assert_close(
                agg(x2)['weights'], expected, atol=1e-6, rtol=1e-5)
    # No state: the sink adds nothing to the saved model.
    assert set(agg.state_dict()) == set(plain.state_dict())


def test_sink_gives_a_set_of_strangers_small_weights():
    """Per-set softmax weights are 1/4 for four strangers as for four views
    of one person; with the sink the strangers weigh less."""
    a = F.normalize(torch.ones(16), dim=0)
    close = F.normalize(a + 0.1 * torch.randn(4, 16), dim=-1)
    strangers = torch.eye(16)[:4]
    x = torch.stack([close, strangers])
    plain = SimilarityAttentionAggregator(16, mlp_hidden=0)
    agg = SimilarityAttentionAggregator(16, mlp_hidden=0, sink=True)
    with torch.no_grad():
        w_plain = plain(x)['weights']
        w_sink = agg(x)['weights']
    torch.testing.assert_close(w_plain[1], torch.full((4, ), 0.25))
    assert w_sink[1].max() < 0.05 < w_sink[0].min()


def test_feeds_csa_and_hps_like_the_attention_aggregator():
    agg = _trained_looking(dim=8)
    sizes = [1, 3, 5, 40]
    labels = torch.cat(
        [torch.full((n, ), c, dtype=torch.long) for c, n in enumerate(sizes)])
    labels = labels[torch.randperm(labels.numel())]
    feats = F.normalize(torch.randn(labels.numel(), 8), dim=1)
    small = cluster_sample_aggregation(
        agg, feats, labels, max_attention_elements=64)
    big = cluster_sample_aggregation(agg, feats, labels)
    torch.testing.assert_close(small, big, atol=1e-5, rtol=0)
    for c in range(len(sizes)):
        with torch.no_grad():
            ref = agg(feats[labels == c][None])['aggregate'][0]
        torch.testing.assert_close(big[c], ref, atol=1e-5, rtol=0)
    # The per-sample statistics HPS reads have the same meaning.
    out = agg(feats[labels == 2][None])
    dispersion = 1 - (out['refined'] * out['aggregate'][:, None]).sum(-1)
    pick = hard_positive_picks(
        torch.zeros(5, dtype=torch.long), out['weights'][0].detach(),
        torch.full((5, ), 0.1), dispersion[0].detach())
    trusted = out['weights'][0] >= 0.1
    assert trusted[pick] and dispersion[0][pick] == dispersion[0][
        trusted].max()


def test_replaces_the_attention_aggregator_in_rcl_by_config():
    torch.manual_seed(0)
    model = MODELS.build(
        dict(
            type='RCL',
            backbone=dict(type='ReIDResNet', depth=18),
            neck=dict(type='ReIDNeck', in_channels=512),
            aggregator=dict(
                type='SimilarityAttentionAggregator', embed_dims=512),
            head=dict(
                type='ClusterContrastHead',
                memory=dict(type='ClusterMemory', feat_dim=512))))
    feats = F.normalize(torch.randn(8, 512), dim=1)
    model.set_clusters(feats, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]), 0)
    samples = [
        ReIDDataSample().set_identity(0, 0, sample_idx=i) for i in range(8)
    ]
    losses = model(torch.randn(8, 3, 64, 32), samples, mode='loss')
    losses['loss_saa'].backward()
    assert model.aggregator.log_temperature.grad is not None
