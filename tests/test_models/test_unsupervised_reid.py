import pytest
import torch

from mmreid_rcl.models.memories import HardMemoryUpdate
from mmreid_rcl.registry import MODELS
from mmreid_rcl.structures import ReIDDataSample
from mmreid_rcl.utils import register_all_modules

register_all_modules()


def _model(**kwargs):
    cfg = dict(
        type='UnsupervisedReID',
        backbone=dict(type='MobileNetV2'),
        neck=dict(type='ReIDNeck', in_channels=1280, pooling='gem'),
        head=dict(
            type='ClusterContrastHead',
            memory=dict(type='ClusterMemory', feat_dim=1280)))
    cfg.update(kwargs)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def _samples(indices):
    return [
        ReIDDataSample().set_identity(0, 0, sample_idx=i) for i in indices
    ]


def test_modes_and_normalised_features():
    model = _model().eval()
    x = torch.randn(3, 3, 64, 32)
    feats = model(x, mode='tensor')
    assert feats.shape == (3, 1280)
    assert torch.allclose(feats.norm(dim=1), torch.ones(3), atol=1e-5)
    out = model(x, _samples([0, 1, 2]), mode='predict')
    assert torch.allclose(torch.stack([s.features for s in out]), feats)
    with pytest.raises(ValueError, match='invalid mode'):
        model(x, mode='nope')


def test_channels_last_gives_the_same_features():
    plain = _model().eval()
    fast = _model(channels_last=True).eval()
    fast.load_state_dict(plain.state_dict())
    x = torch.randn(4, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            fast(x), plain(x), atol=1e-4, rtol=0)


def test_loss_reads_pseudo_labels_by_sample_idx():
    model = _model()
    x = torch.randn(4, 3, 64, 32)
    with pytest.raises(RuntimeError, match='ReClusterHook'):
        model(x, _samples([0, 1, 2, 3]), mode='loss')
    feats = torch.nn.functional.normalize(torch.randn(6, 1280), dim=1)
    labels = torch.tensor([0, 0, 1, 1, -1, 2])
    model.set_clusters(feats, labels, epoch=3)
    assert int(model.cluster_epoch) == 3
    assert model.head.memory.num_clusters == 3
    assert torch.equal(
        model.batch_pseudo_labels(_samples([5, 0, 3])),
        torch.tensor([2, 0, 1]))
    losses = model(x, _samples([0, 1, 2, 3]), mode='loss')
    assert losses['loss_cc'].requires_grad
    losses['loss_cc'].backward()
    assert model.backbone.features[0][0].weight.grad is not None
    with pytest.raises(RuntimeError, match='outliers'):
        model.batch_pseudo_labels(_samples([4]))
    with pytest.raises(RuntimeError, match='outside'):
        model.batch_pseudo_labels(_samples([6]))


def test_loss_moves_the_memory_by_its_rule():
    model = _model(head=dict(
        type='ClusterContrastHead',
        memory=dict(
            type='ClusterMemory',
            feat_dim=1280,
            momentum=0.5,
            update=dict(type='HardMemoryUpdate'))))
    model.eval()  # fixed BatchNorm statistics: the same features twice
    x = torch.randn(4, 3, 64, 32)
    with torch.no_grad():
        feats = model.extract_feat(x)
    labels = torch.tensor([0, 0, 1, 1])
    model.set_clusters(feats, labels, epoch=0)
    before = model.memory.prototypes.clone()
    losses = model(x, _samples([0, 1, 2, 3]), mode='loss')
    assert set(losses) == {'loss_cc', 'acc_cc'}
    torch.testing.assert_close(model.memory.prototypes,
                               HardMemoryUpdate()(before, feats, labels, 0.5))
    # Plain cluster contrast carries none of RCL's parts.
    assert not hasattr(model, 'aggregator')


def test_checkpoint_of_a_clustered_model_loads_into_a_fresh_one():
    model = _model()
    feats = torch.nn.functional.normalize(torch.randn(5, 1280), dim=1)
    model.set_clusters(feats, torch.tensor([0, 1, 1, 2, 2]), epoch=0)
    fresh = _model()
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.pseudo_labels, model.pseudo_labels)
    assert torch.equal(fresh.head.memory.prototypes,
                       model.head.memory.prototypes)
