"""Identity subsets of a train split (``id_subset=``)."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from mmreid_rcl.datasets import CUHK03Dataset, Market1501Dataset
from mmreid_rcl.datasets.id_subset import (check_id_subset, id_hash_unit,
                                           select_ids)

# One tiny valid JPEG, copied to every file (the train split may decode
# its images when it is loaded).
JPEG = cv2.imencode('.jpg', np.zeros((8, 4, 3), np.uint8))[1].tobytes()


def write_market(root: Path, ids, images_per_id: int = 2) -> Path:
    """A Market-1501 tree with ``images_per_id`` train images per id, plus
    junk (-1) and distractor (0) train images and a small test split."""
    train = root / 'bounding_box_train'
    train.mkdir(parents=True, exist_ok=True)
    names = [
        f'{pid:04d}_c{k % 6 + 1}s1_{k:06d}_00.jpg' for pid in ids
        for k in range(images_per_id)
    ] + ['-1_c1s1_000001_00.jpg', '0000_c1s1_000002_00.jpg']
    for name in names:
        (train / name).write_bytes(JPEG)
    for folder, name in (('query', '0901_c1s1_000000_00.jpg'),
                         ('bounding_box_test', '0901_c2s1_000000_00.jpg'),
                         ('bounding_box_test', '0000_c3s1_000000_00.jpg')):
        (root / folder).mkdir(exist_ok=True)
        (root / folder / name).write_bytes(JPEG)
    return root


def served_ids(dataset) -> set:
    return set(dataset.get_person_ids().tolist())


def build(root, **id_subset):
    return Market1501Dataset(data_root=str(root), id_subset=id_subset)


IDS = list(range(1, 201))


@pytest.fixture
def market_root(tmp_path):
    return write_market(tmp_path / 'market', IDS)


def test_halves_are_disjoint_complete_and_near_the_fraction(market_root):
    labelled = build(market_root, fraction=0.5, seed=0, part='labelled')
    unlabelled = build(market_root, fraction=0.5, seed=0, part='unlabelled')
    lab, unl = served_ids(labelled), served_ids(unlabelled)
    assert lab.isdisjoint(unl)
    # Junk (-1) and distractors (0) stay out of train, as without a subset.
    assert lab | unl == set(IDS)
    assert len(labelled) + len(unlabelled) == 2 * len(IDS)
    # 200 ids: a binomial(200, 0.5) count, far inside 100 +- 40.
    assert 60 < len(lab) < 140
    assert labelled.metainfo['num_ids'] == len(lab)
    # Samples keep the folder's sorted order.
    paths = [labelled.get_data_info(i)['img_path']
             for i in range(len(labelled))]
    assert paths == sorted(paths)


def test_membership_is_the_seeded_hash(market_root):
    kept = served_ids(build(market_root, fraction=0.3, seed=7))
    expected = {pid for pid in IDS if id_hash_unit(pid, 7) < 0.3}
    assert kept == expected
    # Pinned: sha256(b'0:1') starts with ef134f2a, 0xef134f2a / 2^32 =
    # 0.93389; a change of the hash would move every id of every split.
    assert id_hash_unit(1, 0) == pytest.approx(0.933888, abs=1e-6)


def test_seed_decides_and_repeats(market_root):
    a = served_ids(build(market_root, fraction=0.5, seed=0))
    again = served_ids(build(market_root, fraction=0.5, seed=0))
    other = served_ids(build(market_root, fraction=0.5, seed=1))
    assert a == again
    assert a != other


def test_stable_when_images_of_other_ids_are_added(tmp_path):
    small = write_market(tmp_path / 'small', IDS)
    large = write_market(tmp_path / 'large', IDS + list(range(300, 500)))
    for part in ('labelled', 'unlabelled'):
        before = served_ids(build(small, fraction=0.5, seed=3, part=part))
        after = served_ids(build(large, fraction=0.5, seed=3, part=part))
        # No old id changes side; new ids only join.
        assert after & set(IDS) == before
        assert after - before <= set(range(300, 500))


def test_larger_fraction_keeps_a_superset(market_root):
    small = served_ids(build(market_root, fraction=0.2, seed=0))
    large = served_ids(build(market_root, fraction=0.6, seed=0))
    assert small < large


def test_relabel_numbers_the_subset(market_root):
    ds = Market1501Dataset(
        data_root=str(market_root),
        relabel=True,
        id_subset=dict(fraction=0.5, seed=0))
    pids = ds.get_person_ids()
    assert set(pids.tolist()) == set(range(ds.metainfo['num_ids']))
    assert np.all(np.diff(pids) >= 0)  # sorted raw ids -> sorted labels


def test_id_file(market_root, tmp_path):
    listed = tmp_path / 'ids.txt'
    listed.write_text('# labelled ids\n3\n\n5  # five\n7\n999\n')
    lab = build(market_root, id_file=str(listed))
    unl = build(market_root, id_file=str(listed), part='unlabelled')
    assert served_ids(lab) == {3, 5, 7}
    assert served_ids(unl) == set(IDS) - {3, 5, 7}


def test_select_ids_directly():
    cfg = check_id_subset(dict(fraction=1.0), 'train')
    assert cfg == dict(fraction=1.0, seed=0, part='labelled')
    assert select_ids([4, 4, 9], cfg) == {4, 9}
    cfg['part'] = 'unlabelled'
    assert select_ids([4, 9], cfg) == set()


@pytest.mark.parametrize('id_subset, message', [
    (dict(fraction=0.5, part='train'), 'part must be one of'),
    (dict(fraction=0.0), r'fraction must be a number in \(0, 1\]'),
    (dict(fraction=1.5), r'fraction must be a number in \(0, 1\]'),
    (dict(fraction=0.5, seed=-1), 'seed must be an int >= 0'),
    (dict(seed=0), 'exactly one of "fraction"'),
    (dict(fraction=0.5, id_file='ids.txt'), 'exactly one of "fraction"'),
    (dict(fraction=0.5, ratio=2), r"unknown keys \['ratio'\]"),
])
def test_bad_settings_are_refused(market_root, id_subset, message):
    with pytest.raises(ValueError, match=message):
        build(market_root, **id_subset)


@pytest.mark.parametrize('split', ['query', 'gallery', 'test'])
def test_only_the_train_split(market_root, split):
    with pytest.raises(ValueError, match='train split only'):
        Market1501Dataset(
            data_root=str(market_root),
            split=split,
            id_subset=dict(fraction=0.5))


def test_bad_id_files_are_named(market_root, tmp_path):
    missing = tmp_path / 'nope.txt'
    with pytest.raises(FileNotFoundError, match='nope.txt'):
        build(market_root, id_file=str(missing))
    bad = tmp_path / 'bad.txt'
    bad.write_text('3\nfive\n')
    with pytest.raises(ValueError, match=r'bad.txt.* line 2'):
        build(market_root, id_file=str(bad))
    none = tmp_path / 'none.txt'
    none.write_text('999\n')
    with pytest.raises(ValueError, match='keeps no identity'):
        build(market_root, id_file=str(none))


@pytest.mark.shared_data
def test_cuhk03_halves(cuhk03_root):
    halves = {
        part: CUHK03Dataset(
            data_root=str(cuhk03_root),
            relabel=True,
            id_subset=dict(fraction=0.5, seed=0, part=part))
        for part in ('labelled', 'unlabelled')
    }
    # The counts the CPU configs are written for (model.head.num_classes).
    assert halves['labelled'].metainfo['num_ids'] == 375
    assert halves['unlabelled'].metainfo['num_ids'] == 368
    assert len(halves['labelled']) + len(halves['unlabelled']) == 7239
