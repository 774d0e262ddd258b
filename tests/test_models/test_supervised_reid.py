"""SupervisedReID: modes, BNNeck features, labels, and its features."""
import pytest
import torch
import torch.nn.functional as F

from mmreid_rcl.registry import MODELS
from mmreid_rcl.structures import ReIDDataSample
from mmreid_rcl.utils import register_all_modules

register_all_modules()

BACKBONE = dict(type='ReIDResNet', depth=18, last_stride=1)


def _model(num_classes=4, neck=None, **kwargs):
    cfg = dict(
        type='SupervisedReID',
        backbone=BACKBONE,
        neck=neck or dict(type='ReIDNeck', in_channels=512, pooling='gem'),
        head=dict(
            type='IdentityClassificationHead',
            in_channels=512,
            num_classes=num_classes))
    cfg.update(kwargs)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def _samples(pids):
    return [
        ReIDDataSample(metainfo=dict(img_path=f'img_{i}.jpg')).set_identity(
            pid, 0, sample_idx=i) for i, pid in enumerate(pids)
    ]


def test_modes():
    model = _model().eval()
    x = torch.randn(3, 3, 64, 32)
    feats = model(x, mode='tensor')
    assert feats.shape == (3, 512)
    torch.testing.assert_close(feats.norm(dim=1), torch.ones(3))
    out = model(x, _samples([0, 1, 2]), mode='predict')
    torch.testing.assert_close(torch.stack([s.features for s in out]), feats)
    with pytest.raises(ValueError, match='invalid mode'):
        model(x, mode='nope')


def test_loss_trains_from_the_true_ids():
    model = _model().train()
    x = torch.randn(8, 3, 64, 32)
    losses = model(x, _samples([0, 0, 1, 1, 2, 2, 3, 3]), mode='loss')
    assert set(losses) == {'loss_cls', 'loss_triplet', 'acc_cls'}
    total = losses['loss_cls'] + losses['loss_triplet']
    total.backward()
    assert model.head.classifier.weight.grad is not None
    assert model.backbone.conv1.weight.grad.abs().sum() > 0


def test_neck_features_are_before_and_after_the_bn():
    model = _model().train()
    x = torch.randn(6, 3, 64, 32)
    feats, bn_feats = model.neck_features(x)
    pooled = model.neck.pool(model.backbone(x)[-1])
    torch.testing.assert_close(feats, pooled)
    # Training-mode BatchNorm with unit weight and zero bias standardises.
    expected = (pooled - pooled.mean(0)) / torch.sqrt(
        pooled.var(0, unbiased=False) + model.neck.bn.eps)
    torch.testing.assert_close(bn_feats, expected, atol=1e-4, rtol=1e-4)
    # The forward hook is gone afterwards.
    assert not model.neck.bn._forward_hooks


def test_neck_without_bn_gives_one_feature_to_both():
    model = _model(neck=dict(
        type='ReIDNeck', in_channels=512, pooling='avg', with_bn=False))
    feats, bn_feats = model.neck_features(torch.randn(2, 3, 64, 32))
    assert feats is bn_feats


def test_features_equal_those_of_the_unsupervised_model():
    """Same backbone and neck weights -> same retrieval features, so the
    metric, the inferencer and the tools serve both models alike."""
    sup = _model(channels_last=True).eval()
    unsup = MODELS.build(
        dict(
            type='UnsupervisedReID',
            backbone=BACKBONE,
            neck=dict(type='ReIDNeck', in_channels=512, pooling='gem'),
            head=dict(
                type='ClusterContrastHead',
                memory=dict(type='ClusterMemory', feat_dim=512)))).eval()
    unsup.backbone.load_state_dict(sup.backbone.state_dict())
    unsup.neck.load_state_dict(sup.neck.state_dict())
    x = torch.randn(4, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            sup.extract_feat(x), unsup.extract_feat(x), atol=1e-4, rtol=0)
        torch.testing.assert_close(
            sup.extract_feat(x),
            F.normalize(sup.neck(sup.backbone(x)), dim=1),
            atol=1e-4,
            rtol=0)


@pytest.mark.parametrize('pid', [-1, 4])
def test_labels_outside_the_classes_are_refused(pid):
    model = _model(num_classes=4)
    with pytest.raises(RuntimeError,
                       match=rf'img_1.jpg has person_id {pid}, outside '
                       r'\[0, 4\).*relabel=True.*num_classes'):
        model(torch.randn(2, 3, 64, 32), _samples([0, pid]), mode='loss')
