import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmreid_rcl.models.memories import (CentralMemoryUpdate, ClusterMemory,
                                        HardMemoryUpdate, MeanMemoryUpdate,
                                        MeanPrototypeInit,
                                        cluster_sample_aggregation,
                                        hard_positive_picks)
from mmreid_rcl.models.necks.similarity_attention_aggregator import \
    SimilarityAttentionAggregator
from mmreid_rcl.models.utils import module_device
from mmreid_rcl.registry import MODELS


def _ref_mean_update(memory, feats, labels, m):
    """Literal sequential update, sample after sample in batch order."""
    memory = memory.clone()
    for f, y in zip(feats, labels):
        memory[y] = m * memory[y] + (1 - m) * f
        memory[y] = memory[y] / memory[y].norm()
    return memory


def _ref_hard_update(memory, feats, labels, m):
    memory0 = memory.clone()
    memory = memory.clone()
    for y in labels.unique():
        members = torch.nonzero(labels == y).flatten()
        sims = torch.stack([feats[i] @ memory0[y] for i in members])
        hard = members[int(torch.argmin(sims))]
        memory[y] = m * memory0[y] + (1 - m) * feats[hard]
        memory[y] = memory[y] / memory[y].norm()
    return memory


def _ref_central_update(memory, feats, labels, m):
    """Per prototype, the member of largest mean cosine to the others."""
    memory0 = memory.clone()
    memory = memory.clone()
    for y in labels.unique():
        members = torch.nonzero(labels == y).flatten().tolist()
        best, best_score = None, None
        for i in members:
            others = [j for j in members if j != i]
            score = (sum(float(feats[i] @ feats[j]) for j in others) /
                     len(others)) if others else 0.0
            if best_score is None or score > best_score + 1e-7:
                best, best_score = i, score
        memory[y] = m * memory0[y] + (1 - m) * feats[best]
        memory[y] = memory[y] / memory[y].norm()
    return memory


def _random_problem(seed, num_clusters=7, batch=24, dim=16):
    g = torch.Generator().manual_seed(seed)
    memory = F.normalize(torch.randn(num_clusters, dim, generator=g), dim=1)
    feats = F.normalize(torch.randn(batch, dim, generator=g), dim=1)
    labels = torch.randint(0, num_clusters, (batch, ), generator=g)
    return memory, feats, labels


@pytest.mark.parametrize('seed', range(5))
def test_mean_update_equals_sequential_reference(seed):
    memory, feats, labels = _random_problem(seed)
    out = MeanMemoryUpdate()(memory, feats, labels, 0.2)
    ref = _ref_mean_update(memory, feats, labels, 0.2)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    # The input memory is not modified in place.
    assert not torch.equal(out, memory)


@pytest.mark.parametrize('rule', ['Mean', 'Hard', 'Central'])
def test_updates_leave_the_input_memory_untouched(rule):
    """Autograd may still hold the old memory: every rule returns a new
    tensor and never writes into the one it is given."""
    from mmreid_rcl.registry import TASK_UTILS
    memory, feats, labels = _random_problem(0)
    before = memory.clone()
    updater = TASK_UTILS.build(dict(type=f'{rule}MemoryUpdate'))
    out = updater(memory, feats, labels, 0.2)
    assert torch.equal(memory, before)
    assert out.data_ptr() != memory.data_ptr()
    assert not torch.equal(out, memory)


@pytest.mark.parametrize('seed', range(5))
def test_hard_update_equals_reference(seed):
    memory, feats, labels = _random_problem(seed)
    out = HardMemoryUpdate()(memory, feats, labels, 0.1)
    ref = _ref_hard_update(memory, feats, labels, 0.1)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize('seed', range(5))
def test_central_update_equals_reference(seed):
    memory, feats, labels = _random_problem(seed)
    out = CentralMemoryUpdate()(memory, feats, labels, 0.1)
    ref = _ref_central_update(memory, feats, labels, 0.1)
    # Picks agree: the two members of a pair tie exactly (the update
    # symmetrises its similarity matrix) and larger sets' best scores lead
    # by >= 5e-3 on these seeds.
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    untouched = sorted(set(range(len(memory))) - set(labels.tolist()))
    torch.testing.assert_close(out[untouched], memory[untouched])


def test_central_update_by_hand():
    # Prototype 0: members a=(1,0), b=(.8,.6), c=(0,1). Mean cosine to the
    # others: a (.8+0)/2 = .4, b (.8+.6)/2 = .7, c (0+.6)/2 = .3, so b
    # moves it: 0.5*(1,0) + 0.5*(.8,.6) = (.9,.3). Prototype 1 has a lone
    # member d=(0,1): 0.5*(0,1) + 0.5*(0,1) = (0,1).
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    feats = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 0, 1])
    out = CentralMemoryUpdate()(memory, feats, labels, 0.5)
    expected = torch.tensor([0.9, 0.3])
    torch.testing.assert_close(out[0], expected / expected.norm())
    torch.testing.assert_close(out[1], torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(out[2], memory[2])
    # The hard rule picks the opposite member, c.
    hard = HardMemoryUpdate()(memory, feats, labels, 0.5)
    torch.testing.assert_close(hard[0], torch.tensor([2**-0.5, 2**-0.5]))


def test_updates_by_hand():
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    feats = torch.tensor([[0.0, 1.0], [0.6, 0.8]])
    labels = torch.tensor([0, 0])
    # Mean: first (0,1): 0.5*(1,0)+0.5*(0,1) -> (1,1)/sqrt2; then with
    # (0.6, 0.8): 0.5*(.7071,.7071)+0.5*(.6,.8) = (.65355,.75355).
    out = MeanMemoryUpdate()(memory, feats, labels, 0.5)
    expected = torch.tensor([0.65355339, 0.75355339])
    torch.testing.assert_close(
        out[0], expected / expected.norm(), atol=1e-6, rtol=0)
    torch.testing.assert_close(out[1], memory[1])
    # Hard: cos((1,0),(0,1)) = 0 < cos((1,0),(.6,.8)) = .6, so only (0,1)
    # moves prototype 0: (0.5, 0.5) normalised.
    out = HardMemoryUpdate()(memory, feats, labels, 0.5)
    torch.testing.assert_close(
        out[0], torch.tensor([2**-0.5, 2**-0.5]), atol=1e-6, rtol=0)


@pytest.mark.parametrize('seed', range(3))
def test_hard_positive_picks_match_a_loop(seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 5, (24, ), generator=g)
    weights = torch.rand(24, generator=g)
    dispersion = torch.rand(24, generator=g)
    floors = torch.full((24, ), 0.3)
    for label in labels.unique():  # one trusted member per label at least
        weights[(labels == label).nonzero()[0]] = 0.9
    picks = hard_positive_picks(labels, weights, floors, dispersion)
    expected = []
    for label in labels.unique().tolist():
        members = [
            i for i in range(24)
            if labels[i] == label and weights[i] >= floors[i]
        ]
        expected.append(max(members, key=lambda i: (dispersion[i], -i)))
    assert picks.tolist() == expected


def test_hard_positive_picks_by_hand():
    labels = torch.tensor([3, 3, 3, 1, 1])
    weights = torch.tensor([0.5, 0.1, 0.4, 0.5, 0.5])
    floors = torch.full((5, ), 0.125)
    dispersion = torch.tensor([0.1, 0.9, 0.2, 0.3, 0.3])
    # Label 3: sample 1 is the most dispersed but below its floor -> 2;
    # label 1: a tie goes to the first sample, 3.
    assert hard_positive_picks(labels, weights, floors,
                               dispersion).tolist() == [3, 2]
    # A label with no trusted sample gets no pick (label 1 here).
    floors = torch.tensor([0.125, 0.125, 0.125, 0.6, 0.6])
    assert hard_positive_picks(labels, weights, floors,
                               dispersion).tolist() == [2]
    assert hard_positive_picks(labels, weights, torch.ones(5),
                               dispersion).numel() == 0


def test_set_prototypes_checks_the_shape():
    mem = ClusterMemory(feat_dim=4)
    mem.set_prototypes(torch.eye(4)[:3].double())
    assert mem.prototypes.dtype == torch.float32 and mem.num_clusters == 3
    with pytest.raises(ValueError, match=r'expected \(C, 4\)'):
        mem.set_prototypes(torch.zeros(3, 5))


def test_mean_prototype_init_by_hand_and_errors():
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    protos = MeanPrototypeInit()(feats, torch.tensor([0, 0, 1]))
    torch.testing.assert_close(
        protos, torch.tensor([[2**-0.5, 2**-0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match='outliers'):
        MeanPrototypeInit()(feats, torch.tensor([0, -1, 1]))
    with pytest.raises(ValueError, match='contiguous'):
        MeanPrototypeInit()(feats, torch.tensor([0, 2, 2]))


def test_cluster_memory_logits_update_and_resize_on_load():
    memory = MODELS.build(
        dict(
            type='ClusterMemory',
            feat_dim=4,
            temperature=0.5,
            momentum=0.2,
            update=dict(type='HardMemoryUpdate')))
    assert isinstance(memory.updater, HardMemoryUpdate)
    with pytest.raises(RuntimeError, match='empty'):
        memory.logits(torch.zeros(1, 4))
    feats = F.normalize(torch.randn(10, 4), dim=1)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2, 3, 3, 3])
    memory.initialise(feats, labels)
    assert memory.num_clusters == 4
    logits = memory.logits(feats)
    torch.testing.assert_close(logits, feats @ memory.prototypes.t() / 0.5)
    before = memory.prototypes.clone()
    memory.update(feats[:2], labels[:2])
    assert not torch.equal(memory.prototypes[0], before[0])
    assert torch.equal(memory.prototypes[1:], before[1:])

    # A fresh memory (0 clusters) loads a checkpoint of 4 clusters.
    other = ClusterMemory(feat_dim=4)
    other.load_state_dict(memory.state_dict())
    assert torch.equal(other.prototypes, memory.prototypes)
    with pytest.raises(RuntimeError, match='expected'):
        ClusterMemory(feat_dim=5).load_state_dict(memory.state_dict())


def test_cluster_memory_rejects_bad_settings():
    with pytest.raises(ValueError, match='momentum'):
        ClusterMemory(feat_dim=4, momentum=1.0)
    with pytest.raises(ValueError, match='temperature'):
        ClusterMemory(feat_dim=4, temperature=0)


def test_head_loss_matches_cross_entropy_and_backprops():
    head = MODELS.build(
        dict(
            type='ClusterContrastHead',
            memory=dict(type='ClusterMemory', feat_dim=4, momentum=0.1)))
    protos = F.normalize(torch.randn(20, 4), dim=1)
    head.memory.initialise(protos, torch.arange(20) % 5)
    ref_memory = head.memory.prototypes.clone()
    feats = F.normalize(torch.randn(6, 4), dim=1).requires_grad_()
    labels = torch.tensor([0, 0, 1, 1, 4, 4])
    out = head.loss(feats, labels)
    expected = F.cross_entropy(feats @ ref_memory.t() / 0.05, labels)
    torch.testing.assert_close(out['loss_cc'], expected)
    out['loss_cc'].backward()
    assert feats.grad is not None and feats.grad.abs().sum() > 0
    # The memory moved after the loss (clusters 0, 1, 4 only).
    moved = (head.memory.prototypes - ref_memory).abs().sum(1) > 0
    assert moved.tolist() == [True, True, False, False, True]


class _BufferOnlyAggregator(nn.Module):
    """An aggregator without parameters whose buffer sits on ``device``;
    it records where its inputs come from and answers on the CPU."""

    num_heads = 1

    def __init__(self, device):
        super().__init__()
        self.register_buffer('scale', torch.ones((), device=device))
        self.seen = []

    def forward(self, x, mask=None, query_chunk=None):
        self.seen.append((x.device.type, mask.device.type))
        return dict(aggregate=torch.ones(x.size(0), x.size(2)))


def test_module_device_falls_back_to_buffers_then_the_default():
    assert module_device(nn.Linear(2, 2).to('meta')).type == 'meta'
    assert module_device(_BufferOnlyAggregator('meta')).type == 'meta'
    assert module_device(nn.ReLU(), 'meta').type == 'meta'
    assert module_device(nn.ReLU()).type == 'cpu'


def test_csa_sends_the_sets_to_a_buffer_only_aggregator():
    """A fixed-temperature similarity aggregator has buffers only: CSA
    takes its device from them (it raised StopIteration)."""
    feats = F.normalize(torch.randn(10, 8), dim=1)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 0, 1, 2])
    agg = SimilarityAttentionAggregator(
        8, mlp_hidden=0, learn_temperature=False)
    assert not list(agg.parameters())
    protos = cluster_sample_aggregation(agg, feats, labels)
    assert protos.shape == (3, 8) and protos.device == feats.device
    # Inputs follow the aggregator's buffers (meta stands in for cuda).
    remote = _BufferOnlyAggregator('meta')
    cluster_sample_aggregation(remote, feats, labels)
    assert remote.seen and set(remote.seen) == {('meta', 'meta')}


_GATHER_WORKER = r"""
import datetime, json, sys
import torch, torch.distributed as dist
from mmreid_rcl.models.memories import ClusterMemory
rank, store = int(sys.argv[1]), sys.argv[2]
dist.init_process_group('gloo', init_method='file://' + store, rank=rank,
                        world_size=2, timeout=datetime.timedelta(seconds=60))
feats, labels = torch.load(sys.argv[3])
memory = ClusterMemory(feat_dim=feats.size(1), momentum=0.5)
memory.set_prototypes(torch.eye(feats.size(1)))
rows = slice(0, 2) if rank == 0 else slice(2, None)  # 2 and 3 rows
memory.update(feats[rows], labels[rows])
print(json.dumps(memory.prototypes.tolist()), flush=True)
dist.barrier()  # neither rank tears the group down under the other
dist.destroy_process_group()
"""


def test_memory_gathers_a_different_number_of_rows_per_rank(tmp_path):
    """HPS updates with one pick per trusted label, so ranks hold different
    numbers of rows: the gather pads them (a plain all_gather mixes or
    aborts them)."""
    feats = F.normalize(torch.randn(5, 4), dim=1)
    labels = torch.tensor([0, 1, 1, 2, 3])
    data = tmp_path / 'batch.pt'
    torch.save((feats, labels), data)
    env = dict(os.environ, OMP_NUM_THREADS='1')
    procs = [
        subprocess.Popen([
            sys.executable, '-c', _GATHER_WORKER,
            str(rank),
            str(tmp_path / 'store'),
            str(data)
        ], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for rank in range(2)
    ]
    outs = [proc.communicate(timeout=240) for proc in procs]
    for proc, (_, err) in zip(procs, outs):
        assert proc.returncode == 0, err[-2000:]
    expected = ClusterMemory(feat_dim=4, momentum=0.5)
    expected.set_prototypes(torch.eye(4))
    expected.update(feats, labels)
    for out, _ in outs:
        got = torch.tensor(json.loads(out.strip().splitlines()[-1]))
        torch.testing.assert_close(got, expected.prototypes)
