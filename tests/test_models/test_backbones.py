import pytest
import torch
import torchvision
from mmengine.runner.checkpoint import get_torchvision_models, load_state_dict
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmreid_rcl.models.backbones import IBN, MobileNetV2, ReIDResNet, ResNetIBN
from mmreid_rcl.registry import MODELS


def _images(n=2):
    return torch.randn(n, 3, 64, 32)


def _assert_same_state(module, state_dict, skip_prefix):
    own = module.state_dict()
    expected = {
        k: v
        for k, v in state_dict.items() if not k.startswith(skip_prefix)
    }
    assert set(own) == set(expected)
    for key, value in expected.items():
        assert torch.equal(own[key], value), key


@pytest.mark.parametrize('cfg,channels', [
    (dict(type='ReIDResNet'), 2048),
    (dict(type='ResNetIBN'), 2048),
    (dict(type='MobileNetV2'), 1280),
])
def test_build_and_output_shape(cfg, channels):
    model = MODELS.build(cfg)
    assert model.out_channels == channels
    model.eval()
    with torch.no_grad():
        outs = model(_images())
    assert isinstance(outs, tuple) and len(outs) == 1
    # ResNets keep stride 16 (last_stride=1); MobileNetV2 has stride 32.
    expected_hw = (2, 1) if cfg['type'] == 'MobileNetV2' else (4, 2)
    assert outs[0].shape == (2, channels) + expected_hw


def test_resnet_last_stride():
    model = ReIDResNet(depth=50, last_stride=1)
    block = model.layer4[0]
    assert block.conv2.stride == (1, 1)
    assert block.downsample[0].stride == (1, 1)
    # Earlier stages keep their stride.
    assert model.layer3[0].conv2.stride == (2, 2)

    model2 = ReIDResNet(depth=50, last_stride=2).eval()
    with torch.no_grad():
        assert model2(_images())[0].shape == (2, 2048, 2, 1)


def test_resnet_basic_block_depths_and_out_indices():
    model = ReIDResNet(depth=18, out_indices=(0, 1, 2, 3)).eval()
    assert model.out_channels == 512
    assert model.layer4[0].conv1.stride == (1, 1)
    with torch.no_grad():
        outs = model(_images())
    assert [o.shape[1] for o in outs] == [64, 128, 256, 512]
    assert [o.shape[2:] for o in outs] == [(16, 8), (8, 4), (4, 2), (4, 2)]

    model = ReIDResNet(depth=50, out_indices=(-2, ))
    assert model.out_indices == (2, )
    assert model.out_channels == 1024


@pytest.mark.parametrize('kwargs,match', [
    (dict(depth=42), 'depth'),
    (dict(last_stride=3), 'last_stride'),
    (dict(out_indices=(4, )), 'out_indices'),
    (dict(out_indices=()), 'out_indices'),
    (dict(frozen_stages=5), 'frozen_stages'),
])
def test_resnet_bad_settings(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ReIDResNet(**kwargs)


def test_resnet_input_must_be_4d():
    with pytest.raises(ValueError, match=r'\(N, C, H, W\)'):
        ReIDResNet(depth=18)(torch.randn(3, 64, 32))


def test_resnet_loads_torchvision_keys_offline(tmp_path):
    # Same key names as the ImageNet checkpoint behind torchvision://resnet50.
    source = torchvision.models.resnet50().state_dict()
    path = tmp_path / 'resnet50_tv.pth'
    torch.save(source, path)

    model = ReIDResNet(
        init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    _assert_same_state(model, source, skip_prefix='fc.')

    # Strict loading: no missing key, and the classifier is the only thing
    # dropped, silently.
    load_state_dict(ReIDResNet(), source, strict=True)
    result = ReIDResNet().load_state_dict(source, strict=True)
    assert not result.missing_keys and not result.unexpected_keys

    # Anything else unexpected is still reported.
    extra = dict(source, **{'head.weight': torch.zeros(1)})
    with pytest.raises(RuntimeError, match='head.weight'):
        load_state_dict(ReIDResNet(), extra, strict=True)


def test_torchvision_scheme_knows_the_checkpoints():
    urls = get_torchvision_models()
    assert 'resnet50' in urls and 'mobilenet_v2' in urls


def test_resnet_frozen_stages_and_norm_eval():
    model = ReIDResNet(depth=18, frozen_stages=1)
    model.train()
    for module in (model.conv1, model.bn1, model.layer1):
        assert all(not p.requires_grad for p in module.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters())
    assert not model.bn1.training and not model.layer1[0].bn1.training
    assert model.layer2[0].bn1.training

    frozen_stats = model.layer1[0].bn1.running_mean.clone()
    free_stats = model.layer2[0].bn1.running_mean.clone()
    model(_images())
    assert torch.equal(model.layer1[0].bn1.running_mean, frozen_stats)
    assert not torch.equal(model.layer2[0].bn1.running_mean, free_stats)

    model = ReIDResNet(depth=18, norm_eval=True)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(not m.training for m in bns)
    assert model.layer1.training  # only the norms are switched
    assert all(p.requires_grad for p in model.parameters())


def test_resnet_ibn_structure():
    model = ResNetIBN()
    for stage in (1, 2, 3):
        for block in getattr(model, f'layer{stage}'):
            assert isinstance(block.bn1, IBN)
            assert not isinstance(block.bn2, IBN)
    assert all(isinstance(b.bn1, nn.BatchNorm2d) for b in model.layer4)
    keys = model.state_dict().keys()
    # IBN-Net's own names, so its released checkpoints load.
    assert 'layer1.0.bn1.IN.weight' in keys
    assert 'layer3.5.bn1.BN.running_var' in keys
    assert 'layer4.0.bn1.running_var' in keys
    assert model.layer1[0].bn1.IN.num_features == 32
    assert model.layer1[0].bn1.BN.num_features == 32
    assert model.layer4[0].conv2.stride == (1, 1)


def test_ibn_layer_normalises_halves():
    torch.manual_seed(0)
    layer = IBN(8).train()
    x = torch.randn(4, 8, 5, 3) * 3 + 2
    out = layer(x)
    assert out.shape == x.shape
    # Instance-norm half: each image and channel standardised on its own.
    inst = out[:, :4]
    assert torch.allclose(inst.mean(dim=(2, 3)), torch.zeros(4, 4),
                          atol=1e-5)
    # Batch-norm half: standardised over the batch, not per image.
    batch = out[:, 4:]
    assert torch.allclose(batch.mean(dim=(0, 2, 3)), torch.zeros(4),
                          atol=1e-5)
    assert not torch.allclose(batch.mean(dim=(2, 3)), torch.zeros(4, 4),
                              atol=1e-2)
    # The IN half of an image does not depend on the rest of the batch.
    alone = layer(x[:1])[:, :4]
    assert torch.allclose(alone, inst[:1], atol=1e-5)

    with pytest.raises(ValueError, match='ibn_ratio'):
        IBN(8, ratio=1.5)


def test_resnet_ibn_frozen_stage_covers_ibn():
    model = ResNetIBN(depth=18, frozen_stages=1)
    ibn = model.layer1[0].bn1
    assert isinstance(ibn, IBN)
    assert not ibn.IN.weight.requires_grad
    assert model.layer2[0].bn1.IN.weight.requires_grad
    with pytest.raises(ValueError, match='ibn_stages'):
        ResNetIBN(ibn_stages=(True, ))


def test_mobilenetv2_loads_torchvision_keys_offline(tmp_path):
    source = torchvision.models.mobilenet_v2().state_dict()
    path = tmp_path / 'mobilenet_v2_tv.pth'
    torch.save(source, path)
    model = MobileNetV2(
        init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    _assert_same_state(model, source, skip_prefix='classifier.')
    load_state_dict(MobileNetV2(), source, strict=True)


def test_mobilenetv2_frozen_stages():
    model = MobileNetV2(frozen_stages=2)
    model.train()
    for i in range(3):
        assert not model.features[i].training
        assert all(not p.requires_grad for p in model.features[i].parameters())
    assert model.features[3].training
    assert all(p.requires_grad for p in model.features[3].parameters())
    with pytest.raises(ValueError, match='frozen_stages'):
        MobileNetV2(frozen_stages=19)
