"""The re-ID training pipeline built from config dicts, as a Runner does."""
import cv2
import mmcv
import numpy as np
import pytest
import torch
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope

from mmreid_rcl.structures import ReIDDataSample


def _train_pipeline(flip_prob=0.5, erase_prob=0.5):
    return [
        dict(type='LoadReIDImage'),
        dict(
            type='Resize',
            scale=(64, 128),
            keep_ratio=False,
            interpolation='bicubic'),
        dict(type='RandomFlip', prob=flip_prob, direction='horizontal'),
        dict(type='RandomPadCrop', padding=10),
        dict(type='RandomErasing', prob=erase_prob),
        dict(type='PackReIDInputs'),
    ]


@pytest.fixture(autouse=True)
def reid_scope():
    with DefaultScope.overwrite_default_scope('mmreid_rcl'):
        yield


@pytest.fixture
def image_path(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 20, 3), dtype=np.uint8)
    path = str(tmp_path / '0003_c2s1_000010_00.png')
    assert cv2.imwrite(path, img)
    return path


def _info(path):
    return dict(
        img_path=path, person_id=3, camera_id=1, sample_idx=12,
        is_query=False)


def test_full_pipeline_from_config(image_path):
    pipeline = Compose(_train_pipeline(flip_prob=1.0, erase_prob=1.0))
    np.random.seed(0)
    packed = pipeline(_info(image_path))
    inputs, sample = packed['inputs'], packed['data_samples']
    assert inputs.shape == (3, 128, 64) and inputs.dtype == torch.uint8
    assert inputs.is_contiguous()
    assert isinstance(sample, ReIDDataSample)
    assert sample.person_id == 3 and sample.camera_id == 1
    assert sample.sample_idx == 12 and sample.is_query is False
    assert sample.img_shape == (128, 64) and sample.ori_shape == (40, 20)
    assert sample.flip is True and sample.flip_direction == 'horizontal'
    assert sample.img_path == image_path


def test_flip_composes_with_our_transforms(image_path):
    resize = dict(
        type='Resize',
        scale=(64, 128),
        keep_ratio=False,
        interpolation='bicubic')
    flipped = Compose([
        dict(type='LoadReIDImage'), resize,
        dict(type='RandomFlip', prob=1.0),
        dict(type='PackReIDInputs')
    ])(_info(image_path))
    plain = Compose([
        dict(type='LoadReIDImage'), resize,
        dict(type='RandomFlip', prob=0.0),
        dict(type='PackReIDInputs')
    ])(_info(image_path))
    assert plain['data_samples'].flip is False
    assert flipped['data_samples'].flip is True
    expected = mmcv.imresize(
        mmcv.imread(image_path), (64, 128), interpolation='bicubic')
    np.testing.assert_array_equal(plain['inputs'].permute(1, 2, 0).numpy(),
                                  expected)
    np.testing.assert_array_equal(flipped['inputs'].numpy(),
                                  plain['inputs'].flip(-1).numpy())


def test_bad_file_fails_in_the_pipeline_naming_the_path(tmp_path):
    path = tmp_path / 'broken.jpg'
    path.write_bytes(b'\xff\xd8\xff\xe0 truncated')
    with pytest.raises(ValueError, match='decoded') as info:
        Compose(_train_pipeline())(_info(str(path)))
    assert str(path) in str(info.value)


@pytest.mark.shared_data
def test_pipeline_on_a_real_cuhk03_image(cuhk03_root):
    path = sorted((cuhk03_root / 'bounding_box_train').glob('*.jpg'))[0]
    np.random.seed(0)
    packed = Compose(_train_pipeline())(_info(str(path)))
    assert packed['inputs'].shape == (3, 128, 64)
    assert packed['inputs'].dtype == torch.uint8
    ori_h, ori_w = packed['data_samples'].ori_shape
    assert ori_h > ori_w > 0  # a standing person
    # A real photo: not a constant image after augmentation.
    assert packed['inputs'].float().std() > 10
