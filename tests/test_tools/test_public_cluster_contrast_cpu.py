"""The yardstick runner's own parts (the public code itself is not here)."""
import importlib.util
from pathlib import Path

import pytest
import torch
import torchvision

from mmreid_rcl.models.backbones import (convert_mobilenetv2_state_dict,
                                         load_mobilenetv2_source)

SCRIPT = (Path(__file__).resolve().parents[2] / 'tools' / 'analysis' /
          'public_cluster_contrast_cpu.py')


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location(
        'public_cluster_contrast_cpu', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.shared_data
def test_same_imagenet_tensors_as_our_backbone(tool, mobilenetv2_weights):
    """The yardstick's MobileNetV2 starts from exactly the tensors our
    converter gives our backbone."""
    features = tool.load_mobilenetv2_features(str(mobilenetv2_weights))
    ours = convert_mobilenetv2_state_dict(
        load_mobilenetv2_source(str(mobilenetv2_weights)))
    theirs = features.state_dict()
    assert len(theirs) == len(ours) == 312
    for (key, value), (our_key, our_value) in zip(theirs.items(),
                                                  ours.items()):
        assert our_key == f'features.{key}'
        assert torch.equal(value, our_value), key


def test_wrong_weights_are_named(tool, tmp_path):
    wrong = tmp_path / 'resnet18.pth'
    torch.save(torchvision.models.resnet18().state_dict(), wrong)
    with pytest.raises(ValueError, match=r'resnet18\.pth: \d+ tensors'):
        tool.load_mobilenetv2_features(str(wrong))
    # Right count, one shape wrong.
    state = torchvision.models.mobilenet_v2().features.state_dict()
    tensors = list(state.values())
    tensors[0] = torch.zeros(3, 3)
    bad = tmp_path / 'bad.pt'
    torch.save(tensors, bad)
    with pytest.raises(ValueError, match=r'bad\.pt: tensor for 0\.0\.weight'):
        tool.load_mobilenetv2_features(str(bad))


def test_missing_checkout_is_named(tool, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr('sys.argv', [
        'x', '--cc-root', str(tmp_path / 'nowhere'), '--', '-d', 'market'])
    with pytest.raises(SystemExit):
        tool.main()
    err = capsys.readouterr().err
    assert 'nowhere' in err and 'alibaba/cluster-contrast-reid' in err
