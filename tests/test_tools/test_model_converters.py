import importlib.util
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torchvision
from mmengine.runner.checkpoint import load_state_dict

from mmreid_rcl.models.backbones import (MobileNetV2,
                                         convert_mobilenetv2_state_dict,
                                         load_mobilenetv2_source)

SCRIPT = (Path(__file__).resolve().parents[2] / 'tools' / 'model_converters' /
          'mobilenetv2_to_mmreid.py')


@pytest.fixture(scope='module')
def converter():
    spec = importlib.util.spec_from_file_location('mobilenetv2_to_mmreid',
                                                  SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def source(mobilenetv2_weights):
    return torch.load(
        mobilenetv2_weights, map_location='cpu', weights_only=True)


@pytest.mark.shared_data
def test_conversion_loads_every_key(mobilenetv2_weights, source, converter,
                                    tmp_path):
    dst = tmp_path / 'out' / 'mobilenetv2_mmreid.pth'
    assert converter.main([str(mobilenetv2_weights), str(dst)]) == 0
    checkpoint = torch.load(dst, map_location='cpu', weights_only=True)
    state_dict = checkpoint['state_dict']
    assert checkpoint['meta']['source_sha256'] == (
        '2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197')

    # Exactly the backbone's keys, in its order, each tensor the source's.
    assert list(state_dict) == list(MobileNetV2().state_dict())
    assert len(state_dict) == len(source) == 312
    for converted, original in zip(state_dict.values(), source.values()):
        assert torch.equal(converted, original)

    # Through the Pretrained initialiser, as a config would load it.
    model = MobileNetV2(init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    model.init_weights()
    for key, value in model.state_dict().items():
        assert torch.equal(value, state_dict[key]), key
    load_state_dict(MobileNetV2(), state_dict, strict=True)

    # And into torchvision's network: real ImageNet statistics, not an init.
    features = torchvision.models.mobilenet_v2().features
    features.load_state_dict(
        OrderedDict((k[len('features.'):], v) for k, v in state_dict.items()))
    bn = features[18][1]
    assert not torch.allclose(bn.running_var, torch.ones(1280))
    assert not torch.allclose(bn.running_mean, torch.zeros(1280))
    assert bn.num_batches_tracked.dtype == torch.long


@pytest.mark.shared_data
def test_refuses_to_overwrite(mobilenetv2_weights, converter, tmp_path,
                              capsys):
    dst = tmp_path / 'converted.pth'
    dst.write_bytes(b'keep me')
    assert converter.main([str(mobilenetv2_weights), str(dst)]) == 1
    assert '--force' in capsys.readouterr().err
    assert dst.read_bytes() == b'keep me'
    with pytest.raises(FileExistsError, match='converted.pth'):
        converter.convert(str(mobilenetv2_weights), str(dst))

    assert converter.main([str(mobilenetv2_weights), str(dst), '--force']) \
        == 0
    assert len(torch.load(dst, weights_only=True)['state_dict']) == 312


def test_wrong_file_is_named(tmp_path, converter):
    wrong = tmp_path / 'resnet18.pth'
    torch.save(torchvision.models.resnet18().state_dict(), wrong)
    with pytest.raises(ValueError, match=r'resnet18\.pth.*312 tensors'):
        load_mobilenetv2_source(str(wrong))
    dst = tmp_path / 'dst.pth'
    assert converter.main([str(wrong), str(dst)]) == 1
    assert not dst.exists()

    garbage = tmp_path / 'garbage.pt'
    garbage.write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='garbage.pt'):
        load_mobilenetv2_source(str(garbage))
    with pytest.raises(FileNotFoundError, match='missing.pt'):
        load_mobilenetv2_source(str(tmp_path / 'missing.pt'))


def _renamed_torchvision_features():
    """A random state dict laid out like the real source."""
    return OrderedDict(
        (f'src.{i}.{k.rsplit(".", 1)[-1]}', v)
        for i, (k, v) in enumerate(MobileNetV2().state_dict().items()))


def test_shape_and_order_mismatch():
    good = _renamed_torchvision_features()
    converted = convert_mobilenetv2_state_dict(good)
    assert list(converted) == list(MobileNetV2().state_dict())

    keys = list(good)
    bad_shape = OrderedDict(good)
    bad_shape[keys[7]] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match=r'my\.pt: tensor 7 .*shape'):
        convert_mobilenetv2_state_dict(bad_shape, source_name='my.pt')

    # Swapping a BN weight and bias keeps every shape: the role check sees
    # it.
    swapped = OrderedDict()
    order = keys[:1] + [keys[2], keys[1]] + keys[3:]
    for key in order:
        swapped[key] = good[key]
    with pytest.raises(ValueError, match='order'):
        convert_mobilenetv2_state_dict(swapped, source_name='my.pt')

    with pytest.raises(ValueError, match='state dict'):
        convert_mobilenetv2_state_dict([1, 2], source_name='my.pt')
