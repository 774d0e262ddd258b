"""WarmStart: an unsupervised model initialised from a supervised one."""
import pytest
import torch

from mmreid_rcl.registry import MODELS
from mmreid_rcl.utils import register_all_modules

register_all_modules()


def _neck(pooling='gem'):
    return dict(type='ReIDNeck', in_channels=512, pooling=pooling)


def _supervised(depth=18, pooling='gem'):
    torch.manual_seed(1)
    return MODELS.build(
        dict(
            type='SupervisedReID',
            backbone=dict(type='ReIDResNet', depth=depth, last_stride=1),
            neck=dict(
                type='ReIDNeck',
                in_channels=2048 if depth == 50 else 512,
                pooling=pooling),
            head=dict(
                type='IdentityClassificationHead',
                in_channels=2048 if depth == 50 else 512,
                num_classes=5)))


def _unsupervised(checkpoint, backbone_init=None, **init):
    torch.manual_seed(2)
    return MODELS.build(
        dict(
            type='UnsupervisedReID',
            backbone=dict(
                type='ReIDResNet',
                depth=18,
                last_stride=1,
                init_cfg=backbone_init),
            neck=_neck(),
            head=dict(
                type='ClusterContrastHead',
                memory=dict(type='ClusterMemory', feat_dim=512)),
            init_cfg=dict(type='WarmStart', checkpoint=checkpoint, **init)))


@pytest.fixture
def supervised_ckpt(tmp_path):
    model = _supervised()
    # Moved statistics, so that a load is visible in the buffers too.
    model.neck.bn.running_mean.add_(0.5)
    path = tmp_path / 'supervised.pth'
    torch.save(dict(meta=dict(epoch=3), state_dict=model.state_dict()), path)
    return model, str(path)


def test_backbone_and_neck_loaded_classifier_dropped(supervised_ckpt):
    source, path = supervised_ckpt
    # The backbone's own init (a file that does not exist) must not run
    # over the warm start.
    model = _unsupervised(
        path,
        backbone_init=dict(type='Pretrained', checkpoint='/nonexistent.pth'))
    model.init_weights()
    src = source.state_dict()
    for key, value in model.state_dict().items():
        if key.startswith(('backbone.', 'neck.')):
            assert torch.equal(value, src[key]), key
    assert not any(k.startswith('head.classifier') for k in
                   model.state_dict())
    # Memory and pseudo labels wait for the first re-clustering.
    assert model.pseudo_labels.numel() == 0
    assert int(model.cluster_epoch) == -1
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            model.eval().extract_feat(x),
            source.eval().extract_feat(x),
            atol=1e-5,
            rtol=0)


def test_log_names_the_file_and_the_dropped_keys(supervised_ckpt,
                                                 monkeypatch):
    from mmreid_rcl.models.reid import warm_start
    messages = []
    monkeypatch.setattr(warm_start, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    _, path = supervised_ckpt
    _unsupervised(path).init_weights()
    out = '\n'.join(messages)
    assert f'from {path}' in out
    assert 'not loaded: 1 tensors (head.classifier.weight)' in out


def test_bare_state_dict_and_ddp_prefix(supervised_ckpt, tmp_path):
    source, _ = supervised_ckpt
    path = tmp_path / 'bare.pth'
    torch.save({f'module.{k}': v for k, v in source.state_dict().items()},
               path)
    model = _unsupervised(str(path))
    model.init_weights()
    assert torch.equal(model.backbone.conv1.weight,
                       source.backbone.conv1.weight)


def test_other_backbone_is_refused_naming_the_file(tmp_path):
    path = tmp_path / 'resnet50.pth'
    torch.save(dict(state_dict=_supervised(depth=50).state_dict()), path)
    with pytest.raises(ValueError) as err:
        _unsupervised(str(path)).init_weights()
    text = str(err.value)
    assert str(path) in text
    assert "model's backbone (ReIDResNet)" in text
    assert 'unexpected keys' in text and 'shape mismatches' in text
    assert ('backbone.layer1.0.conv1.weight: checkpoint (64, 64, 1, 1), '
            'model (64, 64, 3, 3)') in text


def test_other_pooling_is_refused(tmp_path):
    path = tmp_path / 'avg.pth'
    torch.save(dict(state_dict=_supervised(pooling='avg').state_dict()),
               path)
    with pytest.raises(ValueError,
                       match=r"avg.pth does not fit the model's neck "
                       r'\(ReIDNeck\): 1 missing keys \(neck.pool.p\)'):
        _unsupervised(str(path)).init_weights()


def test_checkpoint_without_the_module_is_refused(tmp_path):
    path = tmp_path / 'backbone_only.pth'
    state = {
        k: v
        for k, v in _supervised().state_dict().items()
        if k.startswith('backbone.')
    }
    torch.save(dict(state_dict=state), path)
    with pytest.raises(ValueError, match='has no "neck.\\*" weights'):
        _unsupervised(str(path)).init_weights()


def test_missing_file_folder_and_bad_content(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth is missing'):
        _unsupervised(str(tmp_path / 'nope.pth')).init_weights()
    with pytest.raises(FileNotFoundError, match='is a folder'):
        _unsupervised(str(tmp_path)).init_weights()
    bad = tmp_path / 'list.pth'
    torch.save([1, 2, 3], bad)
    with pytest.raises(ValueError, match='list.pth holds no state dict'):
        _unsupervised(str(bad)).init_weights()


def test_unknown_module_is_refused(supervised_ckpt):
    _, path = supervised_ckpt
    with pytest.raises(ValueError, match="no sub-module 'aggregator'"):
        _unsupervised(path, modules=['aggregator']).init_weights()
