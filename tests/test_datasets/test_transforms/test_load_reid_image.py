import cv2
import numpy as np
import pytest

from mmreid_rcl.datasets.transforms import LoadReIDImage
from mmreid_rcl.registry import TRANSFORMS


def _write_png(path, img):
    assert cv2.imwrite(str(path), img)
    return str(path)


def test_loads_bgr_uint8_and_shapes(tmp_path):
    img = np.zeros((6, 4, 3), dtype=np.uint8)
    img[..., 0] = 10  # blue
    img[..., 2] = 200  # red
    img[1, 2] = (1, 2, 3)
    path = _write_png(tmp_path / 'a.png', img)

    results = LoadReIDImage()(dict(img_path=path, person_id=3))
    assert results['img'].dtype == np.uint8
    np.testing.assert_array_equal(results['img'], img)  # png is lossless
    assert results['img_shape'] == (6, 4)
    assert results['ori_shape'] == (6, 4)
    assert results['person_id'] == 3


def test_to_float32_and_registry(tmp_path):
    img = np.full((3, 5, 3), 7, dtype=np.uint8)
    path = _write_png(tmp_path / 'a.png', img)
    transform = TRANSFORMS.build(dict(type='LoadReIDImage', to_float32=True))
    results = transform(dict(img_path=path))
    assert results['img'].dtype == np.float32
    np.testing.assert_array_equal(results['img'], 7.0)


def test_grayscale_file_is_loaded_as_three_channels(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    path = _write_png(tmp_path / 'g.png', gray)
    img = LoadReIDImage()(dict(img_path=path))['img']
    assert img.shape == (3, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], gray)


def test_missing_file_names_the_path(tmp_path):
    path = str(tmp_path / 'nope' / 'missing.jpg')
    with pytest.raises(FileNotFoundError, match='not found') as info:
        LoadReIDImage()(dict(img_path=path))
    assert path in str(info.value)


def test_empty_file_names_the_path(tmp_path):
    path = tmp_path / 'empty.jpg'
    path.write_bytes(b'')
    with pytest.raises(ValueError, match='empty') as info:
        LoadReIDImage()(dict(img_path=str(path)))
    assert str(path) in str(info.value)


def test_corrupt_file_names_the_path(tmp_path):
    path = tmp_path / 'corrupt.jpg'
    path.write_bytes(b'this is not a jpeg at all' * 10)
    with pytest.raises(ValueError, match='decoded') as info:
        LoadReIDImage()(dict(img_path=str(path)))
    assert str(path) in str(info.value)


def test_missing_img_path_key():
    with pytest.raises(KeyError, match='img_path'):
        LoadReIDImage()(dict(person_id=1))
