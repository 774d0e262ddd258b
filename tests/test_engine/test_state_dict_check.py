"""Checked loading of weights: what fits is loaded, the rest is reported,
and a checkpoint of another model is refused."""
import pytest
import torch
import torch.nn as nn
from mmengine.model import MMDistributedDataParallel

from mmreid_rcl.engine.runner.state_dict_check import (CheckpointMismatchError,
                                                       StateDictMatch,
                                                       extract_state_dict,
                                                       load_checkpoint_checked,
                                                       load_state_dict_checked,
                                                       partial_load_tolerance)
from mmreid_rcl.models.memories import ClusterMemory


class Net(nn.Module):
    """Two linear layers, a BatchNorm and a resizable cluster memory."""

    def __init__(self, width=4, depth=2):
        super().__init__()
        self.layers = nn.Sequential(
            *[nn.Linear(width, width) for _ in range(depth)])
        self.bn = nn.BatchNorm1d(width)
        self.memory = ClusterMemory(feat_dim=width)


def test_tolerance_is_max_of_two_and_one_percent():
    assert [partial_load_tolerance(n) for n in (0, 10, 299, 300, 1000)] == [
        2, 2, 2, 3, 10
    ]


def test_same_model_loads_exactly_and_resizes_the_memory():
    source, target = Net(), Net()
    source.memory.prototypes = torch.randn(7, 4)
    match = load_state_dict_checked(target, source.state_dict())
    assert match.exact and match.fits
    # The cluster memory takes the checkpoint's number of clusters: not a
    # shape mismatch.
    assert target.memory.prototypes.shape == (7, 4)
    torch.testing.assert_close(target.layers[0].weight,
                               source.layers[0].weight)


def test_missing_counters_are_not_counted():
    state = Net().state_dict()
    del state['bn.num_batches_tracked']
    match = load_state_dict_checked(Net(), state)
    assert match.exact


def test_a_few_missing_entries_are_tolerated():
    state = Net().state_dict()
    del state['layers.1.bias']
    match = load_state_dict_checked(Net(), state)
    assert match.missing == ['layers.1.bias'] and match.fits
    assert not match.exact


def test_another_model_is_reported_and_refused(tmp_path):
    other = Net(width=6, depth=3)
    path = str(tmp_path / 'other.pth')
    torch.save({'state_dict': other.state_dict(), 'meta': {}}, path)
    model = Net()
    with pytest.raises(CheckpointMismatchError) as err:
        load_checkpoint_checked(model, path)
    match = load_checkpoint_checked(model, path, allow_partial=True)
    assert sorted(match.missing) == []
    # 2 linear layers x 2, BatchNorm x 4 and the memory's prototypes.
    assert len(match.mis_shaped) == 9
    assert match.unexpected == ['layers.2.weight', 'layers.2.bias']
    assert match.mis_shaped[:2] == [
        'layers.0.weight: checkpoint (6, 6), model (4, 4)',
        'layers.0.bias: checkpoint (6,), model (4,)'
    ]
    assert match.mis_shaped[-1] == ('memory.prototypes: checkpoint has '
                                    'shape (0, 6), expected (C, 4)')
    message = str(err.value)
    assert message.startswith(f'checkpoint {path} does not fit the model '
                              '(Net)')
    assert ('0 of the 9 entries of the model are missing from it and 9 '
            'have another shape (at most 2 tolerated') in message
    assert 'not in the model: layers.2.weight, layers.2.bias' in message


def test_a_larger_model_whose_first_layers_fit_is_refused():
    match = load_state_dict_checked(Net(), Net(depth=6).state_dict())
    assert match.missing == [] and match.mis_shaped == []
    assert len(match.unexpected) == 8 and not match.fits


def test_module_prefix_and_wrappers():
    source = Net()
    state = {f'module.{k}': v for k, v in source.state_dict().items()}
    assert load_state_dict_checked(Net(), extract_state_dict(state)).exact
    wrapped = MMDistributedDataParallel.__new__(MMDistributedDataParallel)
    nn.Module.__init__(wrapped)
    wrapped.module = Net()
    assert load_state_dict_checked(wrapped, source.state_dict()).exact


def test_no_state_dict_is_named(tmp_path):
    path = str(tmp_path / 'list.pth')
    torch.save([1, 2], path)
    with pytest.raises(CheckpointMismatchError,
                       match=f'checkpoint {path} holds no state dict'):
        load_checkpoint_checked(Net(), path)


def test_describe_counts_more_keys_than_shown():
    match = StateDictMatch(
        num_model_entries=100,
        num_checkpoint_entries=3,
        missing=[f'k{i}' for i in range(8)])
    assert not match.fits
    assert '  missing: k0, k1, k2, k3, k4 (+3 more)' in match.describe()
