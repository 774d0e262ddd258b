"""Supervised losses and classifiers against slow references and by hand."""
import math

import pytest
import torch

from mmreid_rcl.models.losses import euclidean_distance
from mmreid_rcl.registry import MODELS
from mmreid_rcl.utils import register_all_modules

register_all_modules()


# -- slow, obviously-correct references -------------------------------------
def ref_label_smooth_ce(logits, labels, epsilon):
    total = 0.0
    num_classes = logits.shape[1]
    for row, y in zip(logits.tolist(), labels.tolist()):
        norm = math.log(sum(math.exp(v) for v in row))
        for c, v in enumerate(row):
            q = epsilon / num_classes + (1 - epsilon if c == y else 0.0)
            total -= q * (v - norm)
    return total / len(logits)


def ref_batch_hard_triplet(feats, labels, margin, soft, normalize):
    feats = feats.tolist()
    labels = labels.tolist()
    if normalize:
        feats = [[v / math.sqrt(sum(u * u for u in f)) for v in f]
                 for f in feats]

    def dist(a, b):
        return math.sqrt(sum((u - v)**2 for u, v in zip(a, b)))

    losses = []
    for i, (anchor, y) in enumerate(zip(feats, labels)):
        pos = [dist(anchor, f) for j, (f, z) in enumerate(zip(feats, labels))
               if z == y and j != i]
        neg = [dist(anchor, f) for f, z in zip(feats, labels) if z != y]
        if not pos or not neg:
            continue
        gap = max(pos) - min(neg)
        losses.append(
            math.log1p(math.exp(gap)) if soft else max(0.0, gap + margin))
    return sum(losses) / len(losses) if losses else 0.0


def ref_cosine_logits(feats, weight, scale):
    out = torch.zeros(len(feats), len(weight), dtype=torch.float64)
    for i, f in enumerate(feats.double()):
        for c, w in enumerate(weight.double()):
            out[i, c] = scale * (f @ w) / (f.norm() * w.norm())
    return out


def pk_batch(p=4, k=3, dim=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(p * k, dim, generator=gen)
    labels = torch.arange(p).repeat_interleave(k)
    perm = torch.randperm(p * k, generator=gen)
    return feats[perm], labels[perm]


# -- label-smoothed cross-entropy -------------------------------------------
@pytest.mark.parametrize('epsilon', [0.0, 0.1, 0.5])
def test_label_smooth_ce_matches_reference(epsilon):
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(7, 5, generator=gen) * 3
    labels = torch.randint(0, 5, (7, ), generator=gen)
    loss = MODELS.build(
        dict(type='LabelSmoothCrossEntropyLoss', epsilon=epsilon))
    assert loss(logits, labels).item() == pytest.approx(
        ref_label_smooth_ce(logits, labels, epsilon), rel=1e-5)
    # The same as torch's built-in smoothing.
    expected = torch.nn.functional.cross_entropy(
        logits, labels, label_smoothing=epsilon)
    torch.testing.assert_close(loss(logits, labels), expected)


def test_label_smooth_ce_by_hand():
    # Two classes, logits (0, 0): p = (1/2, 1/2); any target gives
    # -(0.95 + 0.05) log(1/2) = log 2.
    loss = MODELS.build(dict(type='LabelSmoothCrossEntropyLoss'))
    assert loss(torch.zeros(1, 2), torch.tensor([1])).item() == \
        pytest.approx(math.log(2))
    # Logits (log 3, 0): p = (3/4, 1/4); target 0 with epsilon 0.1 has
    # q = (0.95, 0.05): -(0.95 log 0.75 + 0.05 log 0.25).
    logits = torch.tensor([[math.log(3.0), 0.0]])
    expected = -(0.95 * math.log(0.75) + 0.05 * math.log(0.25))
    assert loss(logits, torch.tensor([0])).item() == pytest.approx(
        expected, rel=1e-6)
    weighted = MODELS.build(
        dict(type='LabelSmoothCrossEntropyLoss', loss_weight=2.0))
    assert weighted(logits, torch.tensor([0])).item() == pytest.approx(
        2 * expected, rel=1e-6)


def test_label_smooth_ce_rejects_bad_epsilon():
    with pytest.raises(ValueError, match=r'epsilon must be in \[0, 1\)'):
        MODELS.build(dict(type='LabelSmoothCrossEntropyLoss', epsilon=1.0))


# -- batch-hard triplet -------------------------------------------------------
@pytest.mark.parametrize('soft, normalize', [(False, False), (False, True),
                                             (True, False), (True, True)])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_triplet_matches_reference(soft, normalize, seed):
    feats, labels = pk_batch(seed=seed)
    loss = MODELS.build(
        dict(type='TripletLoss', margin=0.3, soft_margin=soft,
             normalize_feature=normalize))
    assert loss(feats, labels).item() == pytest.approx(
        ref_batch_hard_triplet(feats, labels, 0.3, soft, normalize),
        rel=1e-4, abs=1e-6)


def test_triplet_by_hand():
    # On a line: ids a = {0, 1}, b = {3, 7}.
    # anchor 0: hardest positive 1, hardest negative 3 -> 1 - 3 + 0.3 < 0
    # anchor 1: positive 1, negative 2 -> 0
    # anchor 3: positive 4, negative 2 -> 4 - 2 + 0.3 = 2.3
    # anchor 7: positive 4, negative 6 -> 0
    feats = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    labels = torch.tensor([0, 0, 1, 1])
    loss = MODELS.build(dict(type='TripletLoss', margin=0.3))
    assert loss(feats, labels).item() == pytest.approx(2.3 / 4, rel=1e-5)
    soft = MODELS.build(dict(type='TripletLoss', soft_margin=True))
    expected = (math.log1p(math.exp(-2)) + math.log1p(math.exp(-1)) +
                math.log1p(math.exp(2)) + math.log1p(math.exp(-2))) / 4
    assert soft(feats, labels).item() == pytest.approx(expected, rel=1e-5)


def test_triplet_skips_anchors_without_positive_or_negative():
    feats = torch.tensor([[0.0], [1.0], [5.0]])
    # Id 1 has a single sample: only the two samples of id 0 are anchors.
    loss = MODELS.build(dict(type='TripletLoss', margin=0.3))
    value = loss(feats, torch.tensor([0, 0, 1]))
    # anchor 0: 1 - 5 + 0.3 < 0; anchor 1: 1 - 4 + 0.3 < 0.
    assert value.item() == 0.0
    # One identity only: no anchor has a negative; zero, with a graph.
    feats.requires_grad_(True)
    value = loss(feats, torch.tensor([0, 0, 0]))
    value.backward()
    assert value.item() == 0.0 and feats.grad is not None


def test_triplet_gradient_is_finite_for_repeated_samples():
    # P x K batches repeat the samples of small identities.
    feats = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 0.5], [3.0, 1.0]],
                         requires_grad=True)
    loss = MODELS.build(dict(type='TripletLoss', margin=0.3))
    loss(feats, torch.tensor([0, 0, 1, 1])).backward()
    assert torch.isfinite(feats.grad).all()


def test_euclidean_distance_matches_cdist():
    feats, _ = pk_batch(dim=16)
    ours, ref = euclidean_distance(feats), torch.cdist(feats, feats)
    # The diagonal is the square root of a rounding error (never mined).
    off = ~torch.eye(len(feats), dtype=torch.bool)
    torch.testing.assert_close(ours[off], ref[off], atol=1e-4, rtol=1e-4)
    assert ours.diagonal().max().item() < 1e-2


def test_triplet_rejects_bad_margin():
    with pytest.raises(ValueError, match='margin must be > 0'):
        MODELS.build(dict(type='TripletLoss', margin=0.0))
    MODELS.build(dict(type='TripletLoss', margin=0.0, soft_margin=True))


# -- classifiers and the head -------------------------------------------------
def test_cosine_classifier_matches_reference():
    clf = MODELS.build(
        dict(type='CosineClassifier', in_channels=6, num_classes=4,
             scale=16.0))
    feats, _ = pk_batch()
    logits = clf(feats)
    torch.testing.assert_close(
        logits.double(), ref_cosine_logits(feats, clf.weight.detach(), 16.0),
        atol=1e-4, rtol=1e-5)
    assert logits.abs().max().item() <= 16.0 + 1e-4
    # Scaling a feature changes nothing.
    torch.testing.assert_close(clf(feats * 5), logits, atol=1e-4, rtol=1e-5)


def test_linear_classifier_has_no_bias():
    clf = MODELS.build(
        dict(type='LinearClassifier', in_channels=6, num_classes=4))
    assert [n for n, _ in clf.named_parameters()] == ['weight']
    assert clf(torch.zeros(2, 6)).abs().max().item() == 0.0


def _head(**kwargs):
    cfg = dict(type='IdentityClassificationHead', in_channels=6,
               num_classes=4)
    cfg.update(kwargs)
    torch.manual_seed(0)
    return MODELS.build(cfg)


@pytest.mark.parametrize('classifier', [
    dict(type='LinearClassifier'),
    dict(type='CosineClassifier', scale=8.0)
])
def test_head_losses_match_the_references(classifier):
    head = _head(classifier=classifier)
    feats, labels = pk_batch()
    bn_feats = feats * 2 + 1  # stands for the BatchNorm's output
    losses = head.loss(feats, bn_feats, labels)
    assert set(losses) == {'loss_cls', 'loss_triplet', 'acc_cls'}
    logits = head(bn_feats).detach()
    assert losses['loss_cls'].item() == pytest.approx(
        ref_label_smooth_ce(logits, labels, 0.1), rel=1e-5)
    # The triplet loss sees the features before the BatchNorm.
    assert losses['loss_triplet'].item() == pytest.approx(
        ref_batch_hard_triplet(feats, labels, 0.3, False, False), rel=1e-4)
    acc = (logits.argmax(1) == labels).float().mean().item() * 100
    assert losses['acc_cls'].item() == pytest.approx(acc)
    assert not losses['acc_cls'].requires_grad


def test_head_losses_can_be_turned_off():
    feats, labels = pk_batch()
    assert set(_head(loss_triplet=None).loss(feats, feats, labels)) == {
        'loss_cls', 'acc_cls'
    }
    assert set(_head(loss_cls=None).loss(feats, feats, labels)) == {
        'loss_triplet', 'acc_cls'
    }
    with pytest.raises(ValueError, match='needs loss_cls, loss_triplet'):
        _head(loss_cls=None, loss_triplet=None)
