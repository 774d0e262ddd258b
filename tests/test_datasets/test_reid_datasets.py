"""Re-ID dataset classes on tiny folder trees and on the real CUHK03."""
import os.path as osp
from pathlib import Path
from typing import Dict, Iterable

import cv2
import numpy as np
import pytest

from mmreid_rcl.datasets import (BaseReIDDataset, CUHK03Dataset,
                                 DukeMTMCDataset, Market1501Dataset,
                                 MSMT17Dataset, PersonXDataset,
                                 ReIDImageFolder, VeRi776Dataset,
                                 list_image_files)
from mmreid_rcl.registry import DATASETS

# A tiny decodable image: the train split decodes its images when built.
TINY_IMAGE = cv2.imencode('.png', np.zeros((4, 2, 3), np.uint8))[1].tobytes()


def write_tree(root: Path, tree: Dict[str, Iterable[str]]) -> Path:
    """Write a tiny image at ``root/folder/name`` for each name."""
    for folder, names in tree.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            path = root / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(TINY_IMAGE)
    return root


# Unsorted on purpose: the datasets must sort.
MARKET_TREE = {
    'bounding_box_train': [
        '0007_c3s3_077419_03.jpg', '0002_c2s1_000301_01.jpg',
        '-1_c1s1_000001_00.jpg', '0000_c1s1_000002_00.jpg',
        '0002_c1s1_000451_03.jpg', '0010_c6s1_001001_02.jpg', 'Thumbs.db'
    ],
    'query': [
        '0002_c4s1_000301_00.jpg', '0007_c5s3_064744_00.jpg',
        '0000_c1s1_000777_00.jpg'
    ],
    'bounding_box_test': [
        '0007_c1s1_000151_01.jpg', '0000_c1s1_000000_01.jpg',
        '-1_c2s1_000100_02.jpg', '0002_c6s1_000151_01.jpg',
        '0002_c4s1_000152_01.jpg'
    ],
}


@pytest.fixture
def market_root(tmp_path):
    return write_tree(tmp_path / 'market', MARKET_TREE)


def names(dataset):
    return [
        osp.basename(dataset.get_data_info(i)['img_path'])
        for i in range(len(dataset))
    ]


# --------------------------------------------------------------------------
# Market-1501 and the behaviour shared by every dataset.
def test_market_train_drops_junk_and_distractors(market_root):
    dataset = Market1501Dataset(str(market_root), split='train')
    assert names(dataset) == [
        '0002_c1s1_000451_03.jpg', '0002_c2s1_000301_01.jpg',
        '0007_c3s3_077419_03.jpg', '0010_c6s1_001001_02.jpg'
    ]
    np.testing.assert_array_equal(dataset.get_person_ids(), [2, 2, 7, 10])
    np.testing.assert_array_equal(dataset.get_camera_ids(), [0, 1, 2, 5])
    info = dataset.get_data_info(0)
    assert info['img_path'] == osp.join(
        str(market_root), 'bounding_box_train', '0002_c1s1_000451_03.jpg')
    assert info['is_query'] is False
    assert info['sample_idx'] == 0
    assert dataset.metainfo == dict(
        dataset_name='Market-1501',
        split='train',
        num_ids=3,
        num_cameras=4,
        num_images=4)


def test_market_gallery_keeps_distractors(market_root):
    gallery = Market1501Dataset(str(market_root), split='gallery')
    np.testing.assert_array_equal(gallery.get_person_ids(), [0, 2, 2, 7])
    assert not gallery.get_query_flags().any()
    query = Market1501Dataset(str(market_root), split='query')
    # A distractor query has no true match: dropped like in train.
    np.testing.assert_array_equal(query.get_person_ids(), [2, 7])
    assert query.get_query_flags().all()


def test_market_test_split_is_query_then_gallery(market_root):
    dataset = Market1501Dataset(str(market_root), split='test')
    flags = dataset.get_query_flags()
    np.testing.assert_array_equal(flags, [True] * 2 + [False] * 4)
    assert names(dataset)[:2] == [
        '0002_c4s1_000301_00.jpg', '0007_c5s3_064744_00.jpg'
    ]
    assert names(dataset)[2:] == [
        '0000_c1s1_000000_01.jpg', '0002_c4s1_000152_01.jpg',
        '0002_c6s1_000151_01.jpg', '0007_c1s1_000151_01.jpg'
    ]
    np.testing.assert_array_equal(dataset.get_camera_ids(),
                                  [3, 4, 0, 3, 5, 0])
    meta = dataset.metainfo
    assert (meta['num_query'], meta['num_gallery']) == (2, 4)
    assert meta['num_images'] == 6 and meta['num_ids'] == 3
    assert dataset.test_mode
    text = repr(dataset)
    assert 'query' in text and 'gallery' in text


def test_serialized_and_plain_give_the_same_ids(market_root):
    plain = Market1501Dataset(
        str(market_root), split='test', serialize_data=False)
    packed = Market1501Dataset(
        str(market_root), split='test', serialize_data=True)
    assert packed.data_list == []  # really serialised
    for getter in ('get_person_ids', 'get_camera_ids', 'get_query_flags'):
        np.testing.assert_array_equal(
            getattr(plain, getter)(),
            getattr(packed, getter)())
    assert plain.get_data_info(3) == packed.get_data_info(3)


def test_relabel_train_and_indices(market_root):
    dataset = Market1501Dataset(
        str(market_root), split='train', relabel=True)
    np.testing.assert_array_equal(dataset.get_person_ids(), [0, 0, 1, 2])
    with pytest.raises(ValueError, match='relabel'):
        Market1501Dataset(str(market_root), split='query', relabel=True)
    subset = Market1501Dataset(str(market_root), split='train', indices=2)
    assert len(subset) == 2
    assert subset.metainfo['num_images'] == 2
    assert subset.metainfo['num_ids'] == 1
    test = Market1501Dataset(str(market_root), split='test')
    part = test.get_subset([0, 2, 3])
    meta = part.metainfo
    assert (meta['num_query'], meta['num_gallery']) == (1, 2)
    assert test.metainfo['num_images'] == 6
    test.get_subset_([1])
    assert test.metainfo['num_images'] == 1


def test_lazy_init_loads_on_demand(market_root):
    dataset = Market1501Dataset(
        str(market_root), split='train', lazy_init=True)
    assert 'num_images' not in dataset.metainfo
    assert 'not loaded' in repr(dataset)
    assert len(dataset.get_person_ids()) == 4
    assert dataset.metainfo['num_images'] == 4


def test_invalid_split(market_root):
    with pytest.raises(ValueError, match='split'):
        Market1501Dataset(str(market_root), split='val')


@pytest.mark.parametrize('cls', [
    Market1501Dataset, DukeMTMCDataset, CUHK03Dataset, PersonXDataset,
    MSMT17Dataset, VeRi776Dataset, ReIDImageFolder
])
def test_registered(cls):
    assert DATASETS.get(cls.__name__) is cls
    assert issubclass(cls, BaseReIDDataset)


def test_build_from_config(market_root):
    dataset = DATASETS.build(
        dict(
            type='Market1501Dataset',
            data_root=str(market_root),
            split='query',
            pipeline=[]))
    assert isinstance(dataset, Market1501Dataset)
    assert len(dataset) == 2


# --------------------------------------------------------------------------
# Errors.
def test_missing_root_names_path_and_layout(tmp_path):
    root = tmp_path / 'nowhere'
    with pytest.raises(FileNotFoundError) as err:
        Market1501Dataset(str(root))
    message = str(err.value)
    assert str(root) in message
    for folder in ('bounding_box_train/', 'query/', 'bounding_box_test/'):
        assert folder in message


def test_missing_split_folder(tmp_path):
    root = write_tree(tmp_path / 'r', {'bounding_box_train': ['1_c1_0.jpg']})
    Market1501Dataset(str(root), split='train')
    with pytest.raises(FileNotFoundError, match='query'):
        Market1501Dataset(str(root), split='query')


def test_empty_split_folder(tmp_path):
    root = write_tree(tmp_path / 'r', {'query': ['readme.txt']})
    with pytest.raises(ValueError) as err:
        Market1501Dataset(str(root), split='query')
    assert osp.join(str(root), 'query') in str(err.value)


def test_only_junk_is_an_error(tmp_path):
    root = write_tree(tmp_path / 'r', {'query': ['-1_c1s1_0.jpg']})
    with pytest.raises(ValueError, match='junk'):
        Market1501Dataset(str(root), split='query')


def test_bad_file_name_names_file_and_pattern(tmp_path):
    root = write_tree(tmp_path / 'r',
                      {'query': ['0001_c1s1_0.jpg', 'holiday.jpg']})
    with pytest.raises(ValueError) as err:
        Market1501Dataset(str(root), split='query')
    assert 'holiday.jpg' in str(err.value)
    assert Market1501Dataset.PATTERN in str(err.value)


def test_camera_out_of_range(tmp_path):
    root = write_tree(tmp_path / 'r', {'query': ['0001_c7s1_0.jpg']})
    with pytest.raises(ValueError, match='0001_c7s1_0.jpg'):
        Market1501Dataset(str(root), split='query')
    # Camera 0 in 1-based names is out of range too.
    root = write_tree(tmp_path / 's', {'query': ['0001_c0s1_0.jpg']})
    with pytest.raises(ValueError, match='camera id -1'):
        Market1501Dataset(str(root), split='query')


def test_zero_byte_image(tmp_path):
    root = write_tree(tmp_path / 'r', {'query': ['0001_c1s1_0.jpg']})
    empty = root / 'query' / '0002_c1s1_0.jpg'
    empty.write_bytes(b'')
    with pytest.raises(ValueError) as err:
        Market1501Dataset(str(root), split='query')
    assert str(empty) in str(err.value)
    dataset = Market1501Dataset(
        str(root), split='query', skip_empty_files=True)
    assert names(dataset) == ['0001_c1s1_0.jpg']


def test_list_image_files_sorted_and_filtered(tmp_path):
    root = write_tree(tmp_path, {'d': ['b.png', 'a.JPG', 'c.txt'],
                                 'd/sub': ['z.jpg']})
    assert list_image_files(str(root / 'd')) == [
        str(root / 'd' / 'a.JPG'), str(root / 'd' / 'b.png')
    ]
    assert list_image_files(str(root / 'd'), recursive=True)[-1] == str(
        root / 'd' / 'sub' / 'z.jpg')


# --------------------------------------------------------------------------
# Other Market-layout data sets.
def test_dukemtmc(tmp_path):
    root = write_tree(
        tmp_path, {
            'bounding_box_train':
            ['0005_c8_f0000001.jpg', '0001_c2_f0046182.jpg'],
            'query': ['0003_c1_f0000002.jpg'],
            'bounding_box_test': ['0003_c5_f0000003.jpg'],
        })
    dataset = DukeMTMCDataset(str(tmp_path), split='train')
    np.testing.assert_array_equal(dataset.get_person_ids(), [1, 5])
    np.testing.assert_array_equal(dataset.get_camera_ids(), [1, 7])
    write_tree(tmp_path, {'query': ['0004_c9_f0000001.jpg']})
    with pytest.raises(ValueError, match='out of range'):
        DukeMTMCDataset(str(root), split='query')


def test_cuhk03_keeps_id_zero(tmp_path):
    write_tree(
        tmp_path, {
            'bounding_box_train': ['0000_c1s1_000000_00.jpg',
                                   '0000_c2s1_000005_00.jpg'],
            'query': ['1000_c1s1_000003_00.jpg'],
            'bounding_box_test': ['1000_c2s1_000008_00.jpg'],
        })
    dataset = CUHK03Dataset(str(tmp_path), split='train')
    np.testing.assert_array_equal(dataset.get_person_ids(), [0, 0])
    np.testing.assert_array_equal(dataset.get_camera_ids(), [0, 1])


def test_veri776(tmp_path):
    write_tree(
        tmp_path, {
            'image_train': ['0002_c020_00030600_0.jpg',
                            '0001_c001_00016450_0.jpg'],
            'image_query': ['0002_c002_00030600_0.jpg'],
            'image_test': ['0002_c011_00030670_0.jpg'],
        })
    dataset = VeRi776Dataset(str(tmp_path), split='train')
    np.testing.assert_array_equal(dataset.get_person_ids(), [1, 2])
    np.testing.assert_array_equal(dataset.get_camera_ids(), [0, 19])
    test = VeRi776Dataset(str(tmp_path), split='test')
    np.testing.assert_array_equal(test.get_camera_ids(), [1, 10])
    with pytest.raises(FileNotFoundError, match='image_train'):
        VeRi776Dataset(str(tmp_path / 'missing'))


PERSONX_TREE = {
    'bounding_box_train': ['0001_c3s1_0001.jpg', '0001_c8s1_0002.jpg',
                           '0002_c4s1_0003.jpg'],
    'query': ['0100_c12s1_0001.jpg'],
    'bounding_box_test': ['0100_c10s1_0002.jpg', '0100_c11s1_0003.jpg',
                          '-1_c5s1_0004.jpg'],
}


def test_personx_camera_map_is_shared_by_splits(tmp_path):
    write_tree(tmp_path, PERSONX_TREE)
    # Cameras 3, 4, 8, 10, 11, 12 -> 0..5, whichever split is loaded; the
    # junk image's camera 5 takes no slot.
    train = PersonXDataset(str(tmp_path), split='train')
    np.testing.assert_array_equal(train.get_camera_ids(), [0, 2, 1])
    test = PersonXDataset(str(tmp_path), split='test')
    np.testing.assert_array_equal(test.get_camera_ids(), [5, 3, 4])
    np.testing.assert_array_equal(test.get_query_flags(),
                                  [True, False, False])


def test_personx_fixed_camera_numbers(tmp_path):
    write_tree(tmp_path, PERSONX_TREE)
    numbers = [12, 11, 10, 8, 4, 3]
    query = PersonXDataset(
        str(tmp_path), split='query', camera_numbers=numbers)
    np.testing.assert_array_equal(query.get_camera_ids(), [0])
    with pytest.raises(ValueError, match='known cameras'):
        PersonXDataset(
            str(tmp_path), split='train', camera_numbers=[3, 4])


def test_personx_too_many_cameras(tmp_path):
    tree = dict(PERSONX_TREE)
    tree['query'] = ['0100_c1s1_0001.jpg', '0100_c2s1_0001.jpg']
    write_tree(tmp_path, tree)
    with pytest.raises(ValueError, match='out of range'):
        PersonXDataset(str(tmp_path), split='gallery')


# --------------------------------------------------------------------------
# MSMT17.
def write_msmt17(root: Path, train_dir: str, test_dir: str) -> Path:
    # Unsorted list_train on purpose.
    lists = {
        'list_train.txt': [
            (train_dir, '0001/0001_012_15_0303noon_0001_1.jpg', 1),
            (train_dir, '0000/0000_000_01_0303morning_0015_0.jpg', 0),
        ],
        'list_val.txt': [
            (train_dir, '0000/0000_003_05_0303morning_0020_0.jpg', 0),
        ],
        'list_query.txt': [
            (test_dir, '0000/0000_001_07_0303noon_0002_0.jpg', 0),
        ],
        'list_gallery.txt': [
            (test_dir, '0000/0000_004_03_0303noon_0009_0.jpg', 0),
            (test_dir, '0002/0002_002_10_0303afternoon_0001_2.jpg', 2),
        ],
    }
    for list_name, entries in lists.items():
        lines = []
        for folder, rel_path, pid in entries:
            write_tree(root, {folder: [rel_path]})
            lines.append(f'{rel_path} {pid}\n')
        (root / list_name).write_text(''.join(lines))
    return root


@pytest.mark.parametrize('layout,train_dir,test_dir', [
    ('v1', 'train', 'test'), ('v2', 'mask_train_v2', 'mask_test_v2')
])
def test_msmt17_list_layouts(tmp_path, layout, train_dir, test_dir):
    write_msmt17(tmp_path, train_dir, test_dir)
    train = MSMT17Dataset(str(tmp_path), split='train', layout=layout)
    # list_train + list_val, sorted by path; id 0 is a real person.
    assert [osp.relpath(p, str(tmp_path)) for p in (
        train.get_data_info(i)['img_path'] for i in range(len(train)))] == [
            osp.join(train_dir, '0000/0000_000_01_0303morning_0015_0.jpg'),
            osp.join(train_dir, '0000/0000_003_05_0303morning_0020_0.jpg'),
            osp.join(train_dir, '0001/0001_012_15_0303noon_0001_1.jpg'),
        ]
    np.testing.assert_array_equal(train.get_person_ids(), [0, 0, 1])
    np.testing.assert_array_equal(train.get_camera_ids(), [0, 4, 14])
    only_train = MSMT17Dataset(
        str(tmp_path), split='train', layout=layout, train_with_val=False)
    assert len(only_train) == 2
    test = MSMT17Dataset(str(tmp_path), split='test', layout=layout)
    np.testing.assert_array_equal(test.get_query_flags(),
                                  [True, False, False])
    np.testing.assert_array_equal(test.get_person_ids(), [0, 0, 2])
    np.testing.assert_array_equal(test.get_camera_ids(), [6, 2, 9])


def test_msmt17_list_errors(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        MSMT17Dataset(str(tmp_path / 'none'), layout='v1')
    for entry in ('train/', 'test/', 'list_train.txt', 'list_gallery.txt'):
        assert entry in str(err.value)
    write_msmt17(tmp_path, 'train', 'test')
    with pytest.raises(FileNotFoundError, match='mask_train_v2'):
        MSMT17Dataset(str(tmp_path), layout='v2')
    with open(tmp_path / 'list_query.txt', 'a') as f:
        f.write('0000/0000_009_02_0303noon_0002_0.jpg 0\n')
    with pytest.raises(FileNotFoundError, match='line 2'):
        MSMT17Dataset(str(tmp_path), split='query')
    (tmp_path / 'list_query.txt').write_text('0000/badname.jpg\n')
    with pytest.raises(ValueError, match='malformed'):
        MSMT17Dataset(str(tmp_path), split='query')
    with pytest.raises(ValueError, match='layout'):
        MSMT17Dataset(str(tmp_path), layout='v3')


def test_msmt17_market_layout(tmp_path):
    write_tree(
        tmp_path, {
            'bounding_box_train': ['0000_c15_0001.jpg', '0000_c1_0002.jpg'],
            'query': ['0005_c3_0001.jpg'],
            'bounding_box_test': ['0005_c4_0002.jpg'],
        })
    train = MSMT17Dataset(str(tmp_path), split='train', layout='market')
    np.testing.assert_array_equal(train.get_person_ids(), [0, 0])
    np.testing.assert_array_equal(train.get_camera_ids(), [14, 0])


# --------------------------------------------------------------------------
# Generic folders.
def test_reid_image_folder_custom_regex(tmp_path):
    write_tree(
        tmp_path, {
            'train': ['p12_cam0_a.png', 'p3_cam2_b.png', 'notes.md'],
            'probe': ['p7_cam1_a.png'],
            'gallery': ['p7_cam0_b.png', 'p7_cam2_c.png'],
        })
    cfg = dict(
        type='ReIDImageFolder',
        data_root=str(tmp_path),
        split_dirs=dict(train='train', query='probe', gallery='gallery'),
        pattern=r'p(?P<pid>\d+)_cam(?P<camid>\d+)',
        camera_offset=0,
        extensions=['.png'])
    train = DATASETS.build(dict(cfg, split='train'))
    np.testing.assert_array_equal(train.get_person_ids(), [12, 3])
    np.testing.assert_array_equal(train.get_camera_ids(), [0, 2])
    test = DATASETS.build(dict(cfg, split='test'))
    np.testing.assert_array_equal(test.get_query_flags(),
                                  [True, False, False])
    np.testing.assert_array_equal(test.get_camera_ids(), [1, 0, 2])
    # Named groups are used by name, whatever their order in the pattern.
    reordered = DATASETS.build(
        dict(
            cfg,
            split='train',
            pattern=r'(?=.*cam(?P<camid>\d+))p(?P<pid>\d+)'))
    np.testing.assert_array_equal(reordered.get_person_ids(), [12, 3])
    np.testing.assert_array_equal(reordered.get_camera_ids(), [0, 2])
    # Two plain groups: person id first.
    plain = DATASETS.build(
        dict(cfg, split='train', pattern=r'p(\d+)_cam(\d+)'))
    np.testing.assert_array_equal(plain.get_person_ids(), [12, 3])
    with pytest.raises(ValueError, match='out of range'):
        DATASETS.build(dict(cfg, split='train', num_cameras=2))


def test_reid_image_folder_bad_pattern(tmp_path):
    with pytest.raises(ValueError, match='pid'):
        ReIDImageFolder(str(tmp_path), pattern=r'(\d+)_(\d+)_(\d+)')


# --------------------------------------------------------------------------
# The real CUHK03 ("labeled", Market layout) of ../shared/data.
@pytest.mark.shared_data
def test_cuhk03_real_counts(cuhk03_root):
    train = CUHK03Dataset(str(cuhk03_root), split='train')
    query = CUHK03Dataset(str(cuhk03_root), split='query')
    gallery = CUHK03Dataset(str(cuhk03_root), split='gallery')
    counts = [(d.metainfo['num_images'], d.metainfo['num_ids'],
               d.metainfo['num_cameras']) for d in (train, query, gallery)]
    assert counts == [(7239, 743, 2), (200, 100, 2), (738, 100, 2)]
    assert set(query.get_person_ids()) == set(gallery.get_person_ids())
    assert not set(train.get_person_ids()) & set(query.get_person_ids())
    paths = [train.get_data_info(i)['img_path'] for i in range(len(train))]
    assert paths == sorted(paths)


@pytest.mark.shared_data
def test_cuhk03_real_test_split_serialized(cuhk03_root):
    test = CUHK03Dataset(
        str(cuhk03_root), split='test', serialize_data=True)
    assert test.data_list == []
    person_ids = test.get_person_ids()
    flags = test.get_query_flags()
    assert person_ids.shape == (938, )
    assert flags[:200].all() and not flags[200:].any()
    assert set(np.unique(test.get_camera_ids())) == {0, 1}
    meta = test.metainfo
    assert (meta['num_query'], meta['num_gallery']) == (200, 738)
    # The is_query flag, not the order, says what a sample is.
    query = CUHK03Dataset(str(cuhk03_root), split='query')
    np.testing.assert_array_equal(person_ids[flags], query.get_person_ids())


def test_pipeline_returning_none_is_an_error_naming_the_image(tmp_path):
    from mmcv.transforms import BaseTransform

    class DropAll(BaseTransform):

        def transform(self, results):
            return None

    root = tmp_path / 'market'
    for folder in ('bounding_box_train', 'query', 'bounding_box_test'):
        (root / folder).mkdir(parents=True)
        (root / folder / '0001_c1s1_000001_00.jpg').write_bytes(b'x')
        (root / folder / '0001_c2s1_000002_00.jpg').write_bytes(b'x')
    from mmreid_rcl.datasets import Market1501Dataset
    dataset = Market1501Dataset(
        data_root=str(root), split='train', pipeline=[DropAll()],
        verify_images=False)
    with pytest.raises(RuntimeError, match='0001_c1s1_000001_00.jpg'):
        dataset[0]


def test_image_folder_reads_unlabelled_training_images(tmp_path):
    """A pattern with only a camera group: unlabelled crops for training."""
    from mmreid_rcl.datasets.reid_image_folder import UNKNOWN_ID
    for folder in ('train', 'query', 'gallery'):
        (tmp_path / folder).mkdir()
    img = np.full((8, 4, 3), 128, np.uint8)
    for name in ('c1_000001.jpg', 'c2_000002.jpg', 'c2_000003.jpg'):
        cv2.imwrite(str(tmp_path / 'train' / name), img)
    kwargs = dict(
        data_root=str(tmp_path),
        split_dirs=dict(train='train', query='query', gallery='gallery'),
        pattern=r'^c(?P<camid>\d+)_\d+\.jpg$')
    train = ReIDImageFolder(split='train', **kwargs)
    assert len(train) == 3
    assert list(train.get_person_ids()) == [UNKNOWN_ID] * 3
    assert list(train.get_camera_ids()) == [0, 1, 1]
    with pytest.raises(ValueError, match='reads no person id'):
        ReIDImageFolder(split='query', **kwargs)
