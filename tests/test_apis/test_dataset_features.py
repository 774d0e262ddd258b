"""Features of a whole data set: order, coverage, the model and loader of
a config."""
import pytest
import torch
from mmengine.config import Config
from tiny_reid import make_checkpoint, tiny_config

from mmreid_rcl.apis.dataset_features import (build_checked_model,
                                              build_cluster_dataloader,
                                              extract_dataset_features)
from mmreid_rcl.engine.runner.state_dict_check import CheckpointMismatchError
from mmreid_rcl.structures import ReIDDataSample
from mmreid_rcl.utils import register_all_modules


class _RowModel(torch.nn.Module):
    """Feature of an input = the input itself (one row per sample)."""

    def __init__(self):
        super().__init__()
        self.data_preprocessor = lambda data, training: data

    def forward(self, inputs, mode='tensor'):
        assert mode == 'tensor' and not self.training
        return inputs


def _batch(indices):
    samples = [ReIDDataSample(metainfo=dict(sample_idx=i)) for i in indices]
    inputs = torch.tensor([[float(i), -float(i)] for i in indices])
    return dict(inputs=inputs, data_samples=samples)


def test_features_come_back_in_sample_order():
    model = _RowModel().train()
    loader = [_batch([3, 0]), _batch([2]), _batch([1, 4])]
    feats = extract_dataset_features(model, loader, 5, progress=False)
    assert feats.dtype == torch.float32
    torch.testing.assert_close(
        feats, torch.tensor([[float(i), -float(i)] for i in range(5)]))
    assert model.training  # the mode is given back


def test_a_sample_left_out_is_an_error():
    with pytest.raises(RuntimeError, match=r'missed samples \[1, 3\]'):
        extract_dataset_features(
            _RowModel(), [_batch([0, 2])], 4, progress=False)


def test_cluster_dataloader_required():
    with pytest.raises(ValueError, match='no cluster_dataloader'):
        build_cluster_dataloader(Config(dict(model=dict())))


def test_checked_model_loads_its_checkpoint_and_refuses_others(tmp_path):
    register_all_modules()
    cfg = tiny_config()
    saved = make_checkpoint(cfg, str(tmp_path / 'r18.pth'))
    model = build_checked_model(cfg, str(tmp_path / 'r18.pth'))
    for name, value in saved.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], value)
    other = tiny_config()
    other.model.backbone = dict(type='MobileNetV2')
    other.model.neck.in_channels = 1280
    other.model.head.memory.feat_dim = 1280
    with pytest.raises(CheckpointMismatchError, match='does not fit'):
        build_checked_model(other, str(tmp_path / 'r18.pth'))
