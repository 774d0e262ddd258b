from collections import Counter

import numpy as np
import pytest
import torch
from mmengine.dataset import BaseDataset
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from mmreid_rcl.datasets.samplers import IdentitySampler
from mmreid_rcl.registry import DATA_SAMPLERS

# (person_id, camera_id) of every sample; ids chosen to exercise the
# camera round-robin and the short-identity cases.
SAMPLES = (
    [(0, 0)] * 3 + [(0, 1)] * 3 +  # id 0: 3 + 3 over two cameras
    [(1, 0)] * 1 + [(1, 1)] * 5 +  # id 1: 1 + 5
    [(2, 0), (2, 1), (2, 2)] * 2 +  # id 2: three cameras, 2 each
    [(3, 0)] * 2 +  # id 3: fewer than K samples
    [(4, 1)] +  # id 4: a single sample
    [(pid, cam) for pid in range(5, 10) for cam in (0, 1, 0, 1)])
PIDS = np.array([p for p, _ in SAMPLES])
CAMS = np.array([c for _, c in SAMPLES])
K = 4


class TinyReIDDataset(BaseDataset):
    """A stand-in re-ID dataset: data infos only, no images."""

    def __init__(self, samples=SAMPLES, **kwargs):
        self._samples = samples
        super().__init__(**kwargs)

    def load_data_list(self):
        return [
            dict(img_path=f'{i}.jpg', person_id=p, camera_id=c,
                 is_query=False) for i, (p, c) in enumerate(self._samples)
        ]


@pytest.fixture
def dataset():
    return TinyReIDDataset()


def _sampler(dataset, **kwargs):
    kwargs = {
        **dict(batch_size=12, num_instances=K, num_iters=20, seed=0,
               label_key='person_id'),
        **kwargs
    }
    return IdentitySampler(dataset, **kwargs)


def _batches(sampler):
    return np.array(list(sampler)).reshape(-1, sampler.batch_size)


def test_every_batch_is_p_identities_by_k_instances(dataset):
    sampler = _sampler(dataset)
    batches = _batches(sampler)
    assert batches.shape == (20, 12)
    for batch in batches:
        slots = batch.reshape(3, K)
        ids = PIDS[slots]
        assert (ids == ids[:, :1]).all()  # K instances of one id per slot
        assert len(set(ids[:, 0])) == 3  # P distinct ids
        for slot, pid in zip(slots, ids[:, 0]):
            # Repeats only for ids with fewer than K samples.
            if (PIDS == pid).sum() >= K:
                assert len(set(slot)) == K
            else:
                assert set(slot) == set(np.flatnonzero(PIDS == pid))


def test_camera_round_robin(dataset):
    batches = _batches(_sampler(dataset, num_iters=30))
    seen = set()
    for slot in batches.reshape(-1, K):
        pid, cams = PIDS[slot[0]], CAMS[slot]
        seen.add(pid)
        counts = sorted(Counter(cams.tolist()).values())
        if pid == 0:
            assert counts == [2, 2]
            # Alternating cameras in the drawn order.
            assert cams[0] != cams[1] and cams[0] == cams[2] \
                and cams[1] == cams[3]
        elif pid == 1:
            assert counts == [1, 3]
        elif pid == 2:
            assert counts == [1, 1, 2]
        elif pid == 4:
            assert len(set(slot)) == 1
    assert seen == set(range(10))


def test_camera_unaware_ignores_cameras():
    # No camera_id in the data infos at all.
    samples = [dict(person_id=i // 6) for i in range(36)]

    class Plain:

        def __len__(self):
            return len(samples)

        def get_data_info(self, i):
            return dict(samples[i])

    sampler = IdentitySampler(
        Plain(), batch_size=8, num_iters=5, seed=0, camera_aware=False,
        label_key='person_id')
    batches = _batches(sampler)
    ids = batches.reshape(-1, K) // 6
    assert (ids == ids[:, :1]).all()
    with pytest.raises(KeyError, match='camera_aware=False'):
        IdentitySampler(Plain(), batch_size=8, seed=0)


def test_identities_without_replacement_within_a_pass(dataset):
    batches = _batches(_sampler(dataset))
    slot_ids = PIDS[batches.reshape(-1, K)[:, 0]]
    # 60 slots = 6 passes over the 10 ids, each pass a permutation, even
    # where a batch straddles two passes.
    for block in slot_ids.reshape(6, 10):
        assert sorted(block) == list(range(10))
    assert len({tuple(b) for b in slot_ids.reshape(6, 10)}) > 1  # reshuffled


def test_pseudo_labels_outliers_never_drawn(dataset):
    sampler = _sampler(dataset, label_key=None)
    labels = np.full(len(PIDS), -1)
    rng = np.random.default_rng(0)
    # Five clusters with arbitrary, non-contiguous label values.
    for value in (100, 7, 42, 3, 9):
        labels[rng.choice(np.flatnonzero(labels == -1), 5, replace=False)] \
            = value
    sampler.set_labels(torch.from_numpy(labels))
    drawn = _batches(sampler).reshape(-1, K)
    assert (labels[drawn] != -1).all()
    assert (labels[drawn] == labels[drawn][:, :1]).all()
    assert set(labels[drawn[:, 0]]) == {100, 7, 42, 3, 9}
    np.testing.assert_array_equal(sampler.labels, labels)
    assert sampler.num_identities == 5


def test_all_samples_of_an_identity_get_drawn(dataset):
    sampler = _sampler(dataset)
    drawn = set()
    for epoch in range(30):
        sampler.set_epoch(epoch)
        drawn.update(list(sampler))
    # Including every one of id 1's five camera-1 images.
    assert drawn == set(range(len(PIDS)))


def test_deterministic_per_seed_and_epoch(dataset):
    state = np.random.get_state()
    torch_state = torch.random.get_rng_state()
    first = list(_sampler(dataset))
    assert list(_sampler(dataset)) == first
    assert list(_sampler(dataset, seed=1)) != first
    sampler = _sampler(dataset)
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first
    # The global generators are never used.
    assert np.array_equal(np.random.get_state()[1], state[1])
    assert torch.equal(torch.random.get_rng_state(), torch_state)


def test_ranks_split_the_global_stream(dataset):
    single = _batches(_sampler(dataset, num_iters=8, world_size=1, rank=0))
    rank0 = _sampler(dataset, num_iters=4, world_size=2, rank=0)
    rank1 = _sampler(dataset, num_iters=4, world_size=2, rank=1)
    assert len(rank0) == len(rank1) == 4 * 12
    b0, b1 = _batches(rank0), _batches(rank1)
    # Rank r holds global batches r, r + W, ...: disjoint shares whose
    # union is the single-process stream of the same total length.
    np.testing.assert_array_equal(b0, single[0::2])
    np.testing.assert_array_equal(b1, single[1::2])
    assert not np.array_equal(b0, b1)


def test_length_is_fixed(dataset):
    sampler = _sampler(dataset, num_iters=7)
    assert len(sampler) == 7 * 12
    assert len(list(sampler)) == 7 * 12
    labels = np.where(PIDS < 3, PIDS, -1)  # only three identities left
    sampler.set_labels(labels)
    assert len(sampler) == len(list(sampler)) == 7 * 12
    # Default: about one pass over the data per epoch and rank.
    assert _sampler(dataset, num_iters=None).num_iters == len(PIDS) // 12
    assert _sampler(
        dataset, num_iters=None, world_size=2, rank=1).num_iters == 1


def test_state_dict_resumes_labels_and_sequence(dataset):
    sampler = _sampler(dataset, label_key=None, seed=5)
    labels = np.where(PIDS % 2 == 0, PIDS, -1)
    sampler.set_labels(labels)
    sampler.set_epoch(3)
    state = sampler.state_dict()
    resumed = _sampler(dataset, label_key=None, seed=99)
    resumed.load_state_dict(state)
    assert resumed.epoch == 3 and resumed.seed == 5
    np.testing.assert_array_equal(resumed.labels, labels)
    assert list(resumed) == list(sampler)
    empty = _sampler(dataset, label_key=None).state_dict()
    assert empty['labels'] is None
    with pytest.raises(KeyError, match='seed'):
        resumed.load_state_dict(dict(labels=None, epoch=0))


def test_errors(dataset):
    with pytest.raises(ValueError, match=r'batch_size \(10\) must be a '
                       r'multiple of num_instances \(4\)'):
        _sampler(dataset, batch_size=10)
    sampler = _sampler(dataset, label_key=None)
    with pytest.raises(RuntimeError, match='pseudo labels were not set'):
        list(sampler)
    with pytest.raises(ValueError, match=rf'shape \({len(PIDS)}, \)'):
        sampler.set_labels(np.zeros(len(PIDS) - 1, dtype=int))
    with pytest.raises(ValueError, match='integer'):
        sampler.set_labels(np.zeros(len(PIDS)))
    with pytest.raises(ValueError, match='-1'):
        sampler.set_labels(np.full(len(PIDS), -2))
    two_ids = np.where(PIDS < 2, PIDS, -1)
    with pytest.raises(ValueError, match=r'P=3 .* 3 x 4, but the labels '
                       r'have 2'):
        sampler.set_labels(two_ids)
    with pytest.raises(RuntimeError, match='not set'):
        list(sampler)  # a rejected label set leaves no labels behind
    with pytest.raises(ValueError, match='not both'):
        _sampler(dataset, labels=PIDS)
    with pytest.raises(ValueError, match='rank'):
        _sampler(dataset, rank=2, world_size=2)
    with pytest.raises(KeyError, match='label_key="pid"'):
        _sampler(dataset, label_key='pid')


def test_built_by_registry_and_in_a_dataloader(dataset):
    dataset.pipeline = lambda info: dict(
        index=info['sample_idx'], person_id=info['person_id'])
    with DefaultScope.overwrite_default_scope('mmreid_rcl'):
        sampler = DATA_SAMPLERS.build(
            dict(type='IdentitySampler', batch_size=8, num_iters=3,
                 label_key='person_id'),
            default_args=dict(dataset=dataset, seed=None))
        assert isinstance(sampler, IdentitySampler)
        loader = Runner.build_dataloader(
            dict(
                batch_size=8,
                num_workers=0,
                dataset=dataset,
                sampler=dict(
                    type='IdentitySampler',
                    batch_size=8,
                    num_instances=K,
                    num_iters=3,
                    label_key='person_id'),
                collate_fn=dict(type='pseudo_collate')),
            seed=0)
    assert isinstance(loader.sampler, IdentitySampler)
    assert len(loader) == 3
    batches = list(loader)
    assert len(batches) == 3
    for batch in batches:
        ids = np.array(batch['person_id']).reshape(2, K)
        assert (ids == ids[:, :1]).all() and ids[0, 0] != ids[1, 0]
        np.testing.assert_array_equal(PIDS[batch['index']], ids.ravel())


def test_start_iter_skips_batches_of_the_same_stream(dataset):
    sampler = _sampler(dataset)
    sampler.set_epoch(3)
    full = list(sampler)
    sampler.set_start_iter(2)
    rest = list(sampler)
    assert rest == full[2 * sampler.batch_size:]
    assert len(sampler) == len(full)
    sampler.set_start_iter(0)
    assert list(sampler) == full
    with pytest.raises(ValueError, match='beyond'):
        sampler.set_start_iter(sampler.num_iters + 1)


def test_anchor_cross_camera_rule(dataset):
    """The published cluster-contrast sampler's rule: an anchor, then
    K - 1 from the identity's other cameras (its other samples when it has
    one camera), with replacement when fewer than K candidates."""
    sampler = _sampler(dataset, num_iters=1200,
                       instance_rule='anchor_cross_camera')
    batches = _batches(sampler)
    anchor_cams_of_1 = []
    for slot in batches.reshape(-1, K):
        pids = PIDS[slot]
        assert (pids == pids[0]).all()
        pid, anchor, rest = pids[0], slot[0], slot[1:]
        members = np.flatnonzero(PIDS == pid)
        other_cams = members[CAMS[members] != CAMS[anchor]]
        if pid == 4:  # a single sample
            assert (slot == anchor).all()
        elif pid == 3:  # one camera, two samples: the other one, repeated
            assert (rest == members[members != anchor]).all()
        else:
            assert np.isin(rest, other_cams).all()
            if len(other_cams) >= K:  # without replacement
                assert len(set(rest.tolist())) == K - 1
        if pid == 1:
            anchor_cams_of_1.append(CAMS[anchor])
    # The anchor is uniform over id 1's samples: 1 of 6 is in camera 0.
    share = np.mean(np.array(anchor_cams_of_1) == 0)
    assert len(anchor_cams_of_1) > 300 and 0.10 < share < 0.24
    # Identities per batch are drawn as with the default rule.
    default = _batches(_sampler(dataset, num_iters=1200))
    np.testing.assert_array_equal(PIDS[batches], PIDS[default])
    assert sampler.instance_rule == 'anchor_cross_camera'
    with pytest.raises(ValueError, match='instance_rule must be one of'):
        _sampler(dataset, instance_rule='anchor')
    with pytest.raises(ValueError, match='set camera_aware=True'):
        _sampler(dataset, camera_aware=False,
                 instance_rule='anchor_cross_camera')
