import numpy as np
import pytest
import torch

from mmreid_rcl.models.necks import (GeneralizedMeanPooling,
                                     GlobalAveragePooling, GlobalMaxPooling,
                                     ReIDNeck)
from mmreid_rcl.registry import MODELS


def _positive_maps(seed=0, shape=(4, 6, 5, 3)):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=gen) * 0.9 + 0.1


def test_gem_matches_hand_computation():
    x = _positive_maps()
    gem = GeneralizedMeanPooling(p=3.0)
    ref = np.mean(x.double().numpy()**3, axis=(2, 3))**(1 / 3)
    np.testing.assert_allclose(gem(x).detach().numpy(), ref, rtol=1e-5)

    # p = 1 is average pooling, a large p approaches max pooling.
    avg = GeneralizedMeanPooling(p=1.0)(x)
    assert torch.allclose(avg, x.mean(dim=(2, 3)), atol=1e-6)
    near_max = GeneralizedMeanPooling(p=60.0)(x)
    top = x.amax(dim=(2, 3))
    assert torch.all(near_max <= top + 1e-6)
    assert torch.allclose(near_max, top, rtol=0.06)
    assert not torch.allclose(avg, top, rtol=0.06)


def test_gem_clamps_non_positive_inputs():
    x = torch.zeros(2, 3, 4, 4)
    x[0, 0, 0, 0] = -5.0
    out = GeneralizedMeanPooling(p=3.0, eps=1e-6)(x)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, torch.full_like(out, 1e-6), rtol=1e-3)


def test_gem_p_learnable_or_fixed():
    gem = GeneralizedMeanPooling()
    assert isinstance(gem.p, torch.nn.Parameter)
    assert gem.p.item() == pytest.approx(3.0) and gem.eps == 1e-6
    gem(_positive_maps()).sum().backward()
    assert gem.p.grad is not None and gem.p.grad.abs().item() > 0

    fixed = GeneralizedMeanPooling(p=2.0, learnable=False)
    assert not list(fixed.parameters())
    assert 'p' in fixed.state_dict()
    with pytest.raises(ValueError, match='p must be > 0'):
        GeneralizedMeanPooling(p=0)


def test_plain_poolings():
    x = torch.randn(2, 3, 4, 2)
    # Exact: the poolings call this very mean / amax on the same tensor.
    assert torch.equal(GlobalAveragePooling()(x), x.mean(dim=(2, 3)))
    assert torch.equal(GlobalMaxPooling()(x), x.amax(dim=(2, 3)))
    with pytest.raises(ValueError, match='N, C, H, W'):
        GlobalAveragePooling()(x[0])


@pytest.mark.parametrize('pooling,ref', [
    ('avg', lambda x: x.mean(dim=(2, 3))),
    ('max', lambda x: x.amax(dim=(2, 3))),
    ('gem', lambda x: x.pow(3).mean(dim=(2, 3)).pow(1 / 3)),
    (dict(type='GeneralizedMeanPooling', p=1.0, learnable=False),
     lambda x: x.mean(dim=(2, 3))),
])
def test_neck_pooling_choices(pooling, ref):
    neck = MODELS.build(
        dict(type='ReIDNeck', in_channels=6, pooling=pooling, with_bn=False))
    x = _positive_maps()
    # The tuple of a backbone: the last map is used.
    out = neck((torch.zeros(4, 2, 1, 1), x))
    assert out.shape == (4, 6)
    assert torch.allclose(out, ref(x), atol=1e-5)
    assert neck.out_channels == 6


def test_neck_bn_and_normalize():
    x = _positive_maps()
    neck = ReIDNeck(in_channels=6, pooling='avg').train()
    out = neck(x)
    # Train-mode batch norm with weight 1 and bias 0 standardises features.
    assert torch.allclose(out.mean(dim=0), torch.zeros(6), atol=1e-5)

    neck = ReIDNeck(in_channels=6, normalize=True).eval()
    out = neck(x)
    assert out.shape == (4, 6)
    assert torch.allclose(out.norm(dim=1), torch.ones(4), atol=1e-5)
    unnormalised = ReIDNeck(in_channels=6).eval()(x)
    assert not torch.allclose(unnormalised.norm(dim=1), torch.ones(4))


def test_neck_bn_bias_stays_zero_and_p_learns():
    torch.manual_seed(0)
    neck = ReIDNeck(in_channels=6, pooling='gem').train()
    assert not neck.bn.bias.requires_grad
    assert neck.bn.weight.requires_grad
    optimizer = torch.optim.Adam(
        neck.parameters(), lr=0.1, weight_decay=5e-4)
    weight, p = neck.bn.weight.clone(), neck.pool.p.clone()
    x = _positive_maps()
    target = torch.randn(4, 6)
    loss = (neck(x) - target).pow(2).sum()
    loss.backward()
    assert neck.pool.p.grad is not None
    assert neck.bn.bias.grad is None
    optimizer.step()
    assert torch.equal(neck.bn.bias, torch.zeros(6))
    assert not torch.equal(neck.bn.weight, weight)
    assert not torch.equal(neck.pool.p, p)


def test_neck_with_backbone_channels():
    backbone = MODELS.build(dict(type='ReIDResNet', depth=18)).eval()
    neck = MODELS.build(
        dict(type='ReIDNeck', in_channels=backbone.out_channels,
             normalize=True)).eval()
    with torch.no_grad():
        feats = neck(backbone(torch.randn(2, 3, 64, 32)))
    assert feats.shape == (2, 512)


def test_neck_bad_settings():
    with pytest.raises(ValueError, match='pooling'):
        ReIDNeck(in_channels=6, pooling='mean')
    with pytest.raises(TypeError, match='pooling'):
        ReIDNeck(in_channels=6, pooling=3)
    with pytest.raises(ValueError, match='in_channels'):
        ReIDNeck(in_channels=0)
    neck = ReIDNeck(in_channels=6)
    with pytest.raises(ValueError, match='in_channels=6'):
        neck(torch.rand(2, 5, 3, 3))
