import numpy as np
import pytest
import torch

from mmreid_rcl.datasets.transforms import PackReIDInputs
from mmreid_rcl.registry import TRANSFORMS
from mmreid_rcl.structures import ReIDDataSample


def test_packs_chw_uint8_and_labels():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    results = dict(
        img=img,
        img_path='a/0001_c2s1_000001_00.jpg',
        person_id=1,
        camera_id=1,
        sample_idx=7,
        is_query=True,
        ori_shape=(2, 3),
        img_shape=(2, 3),
        flip=False,
        unrelated='dropped')
    packed = TRANSFORMS.build(dict(type='PackReIDInputs'))(results)
    inputs = packed['inputs']
    assert isinstance(inputs, torch.Tensor)
    assert inputs.dtype == torch.uint8 and inputs.shape == (3, 2, 3)
    assert inputs.is_contiguous()
    # Channel c of the tensor is channel c of the image (order kept: BGR).
    for c in range(3):
        np.testing.assert_array_equal(inputs[c].numpy(), img[..., c])

    sample = packed['data_samples']
    assert isinstance(sample, ReIDDataSample)
    assert sample.person_id == 1 and sample.camera_id == 1
    assert sample.sample_idx == 7 and sample.is_query is True
    assert sample.img_path == 'a/0001_c2s1_000001_00.jpg'
    assert sample.ori_shape == (2, 3) and sample.flip is False
    assert 'flip_direction' not in sample.metainfo  # absent in results
    assert 'unrelated' not in sample.metainfo


def test_unlabeled_image_defaults():
    packed = PackReIDInputs()(dict(img=np.zeros((4, 2, 3), np.uint8)))
    sample = packed['data_samples']
    assert sample.person_id == -1 and sample.camera_id == -1
    assert sample.is_query is False
    assert 'sample_idx' not in sample.metainfo


def test_grayscale_and_custom_meta_keys():
    packed = PackReIDInputs(meta_keys=('scale_factor', ))(
        dict(img=np.ones((4, 2), np.uint8), scale_factor=(2.0, 2.0),
             img_path='x.jpg', person_id=np.int64(5)))
    assert packed['inputs'].shape == (1, 4, 2)
    assert packed['data_samples'].scale_factor == (2.0, 2.0)
    assert 'img_path' not in packed['data_samples'].metainfo
    assert packed['data_samples'].person_id == 5


def test_errors():
    with pytest.raises(KeyError, match='img'):
        PackReIDInputs()(dict(person_id=1))
    with pytest.raises(TypeError, match='meta_keys'):
        PackReIDInputs(meta_keys='img_path')
