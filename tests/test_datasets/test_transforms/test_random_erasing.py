import numpy as np
import pytest

from mmreid_rcl.datasets.transforms import RandomErasing
from mmreid_rcl.registry import TRANSFORMS


def _changed_box(before, after):
    """The bounding box of the changed pixels, checked to be all changed."""
    changed = np.any(before != after, axis=-1)
    rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
    top, bottom = rows[0], rows[-1] + 1
    left, right = cols[0], cols[-1] + 1
    assert changed[top:bottom, left:right].all(), 'not a filled rectangle'
    assert changed.sum() == (bottom - top) * (right - left)
    return top, bottom, left, right


def test_erases_one_rectangle_within_area_bounds():
    # 255 is never a fill value of 'mean', so every erased pixel changes.
    img = np.full((32, 16, 3), 255, dtype=np.uint8)
    transform = RandomErasing(prob=1.0, area_range=(0.05, 0.3))
    np.random.seed(0)
    areas = []
    for _ in range(50):
        out = transform(dict(img=img))['img']
        assert out.shape == img.shape and out.dtype == np.uint8
        top, bottom, left, right = _changed_box(img, out)
        area = (bottom - top) * (right - left) / (32 * 16)
        assert 0.05 <= area <= 0.3
        # 'mean' fill: the ImageNet BGR mean rounded to uint8.
        np.testing.assert_array_equal(out[top:bottom, left:right],
                                      np.broadcast_to([104, 116, 124],
                                                      (bottom - top,
                                                       right - left, 3)))
        areas.append(area)
    assert np.ptp(areas) > 0.1  # sizes vary over the range
    np.testing.assert_array_equal(img, 255)  # input array untouched


def test_aspect_range_is_respected():
    img = np.full((64, 64, 3), 255, dtype=np.uint8)
    # Only wide boxes: height / width in [0.25, 0.5].
    transform = RandomErasing(
        prob=1.0, area_range=(0.1, 0.2), aspect_range=(0.25, 0.5))
    np.random.seed(1)
    for _ in range(30):
        top, bottom, left, right = _changed_box(
            img, transform(dict(img=img))['img'])
        ratio = (bottom - top) / (right - left)
        # Allow for the rounding of both sides to whole pixels.
        assert 0.2 <= ratio <= 0.6


def test_constant_and_random_fill():
    img = np.full((20, 10, 3), 200, dtype=np.uint8)
    np.random.seed(2)
    out = RandomErasing(prob=1.0, fill=(1, 2, 3))(dict(img=img))['img']
    top, bottom, left, right = _changed_box(img, out)
    assert (out[top:bottom, left:right] == [1, 2, 3]).all()

    out = RandomErasing(prob=1.0, fill=0)(dict(img=img))['img']
    top, bottom, left, right = _changed_box(img, out)
    assert (out[top:bottom, left:right] == 0).all()

    big = np.full((40, 40, 3), 200, dtype=np.uint8)
    out = RandomErasing(
        prob=1.0, fill='random', area_range=(0.3, 0.4))(dict(img=big))['img']
    changed = np.any(out != 200, axis=-1)
    assert changed.sum() > 0.25 * 40 * 40
    assert len(np.unique(out[changed])) > 100  # noise, not a constant


def test_prob():
    img = np.full((16, 8, 3), 255, dtype=np.uint8)
    assert RandomErasing(prob=0.0)(dict(img=img))['img'] is img
    transform = RandomErasing(prob=0.5)
    np.random.seed(3)
    erased = sum(
        not np.array_equal(transform(dict(img=img))['img'], img)
        for _ in range(400))
    assert 150 < erased < 250


def test_image_too_small_for_the_area_range_is_left_alone():
    img = np.full((2, 2, 3), 255, dtype=np.uint8)
    # No whole-pixel box of a 2x2 image has 10-20% of its area.
    transform = RandomErasing(prob=1.0, area_range=(0.1, 0.2))
    np.testing.assert_array_equal(transform(dict(img=img))['img'], img)


def test_registry_build():
    transform = TRANSFORMS.build(
        dict(type='RandomErasing', prob=1.0, fill='mean', mean=(0, 0, 0)))
    img = np.full((16, 8, 3), 255, dtype=np.uint8)
    out = transform(dict(img=img))['img']
    assert (out == 0).any()


@pytest.mark.parametrize('kwargs', [
    dict(prob=2), dict(area_range=(0.5, 0.1)), dict(area_range=(0, 0.3)),
    dict(area_range=0.3), dict(aspect_range=(-1, 2)), dict(fill='noise'),
    dict(fill=[1, 'a']), dict(max_attempts=0)
])
def test_bad_arguments(kwargs):
    with pytest.raises((ValueError, TypeError), match='RandomErasing'):
        RandomErasing(**kwargs)


def test_fill_channel_mismatch():
    img = np.zeros((16, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match='fill has 2 values'):
        RandomErasing(prob=1.0, fill=(1, 2))(dict(img=img))


@pytest.mark.parametrize('sampling, low, high', [
    ('log_uniform', 0.42, 0.58),  # P(h > w) = 1/2
    ('uniform', 0.70, 0.84),  # P(h > w) = (3.33 - 1) / (3.33 - 0.3) = 0.77
])
def test_aspect_sampling(sampling, low, high):
    img = np.full((200, 200, 3), 255, dtype=np.uint8)
    transform = RandomErasing(
        prob=1.0, area_range=(0.02, 0.1), aspect_sampling=sampling)
    np.random.seed(3)
    tall = []
    for _ in range(400):
        top, bottom, left, right = _changed_box(
            img, transform(dict(img=img))['img'])
        ratio = (bottom - top) / (right - left)
        assert 0.25 <= ratio <= 3.6
        tall.append(ratio > 1)
    # 400 draws: the share's standard deviation is at most 0.025.
    assert low < np.mean(tall) < high
    with pytest.raises(ValueError, match='aspect_sampling must be one of'):
        RandomErasing(aspect_sampling='normal')


def test_published_fill_normalises_to_the_imagenet_mean():
    from mmreid_rcl.datasets.transforms.random_erasing import \
        NORMALISED_MEAN_FILL_BGR
    mean = np.array([0.485, 0.456, 0.406])  # RGB, 0-1 scale
    std = np.array([0.229, 0.224, 0.225])
    rgb = np.array(NORMALISED_MEAN_FILL_BGR[::-1]) / 255
    np.testing.assert_allclose((rgb - mean) / std, mean, atol=2e-4)
    # As written into a uint8 image: within half a grey level.
    img = np.zeros((20, 10, 3), dtype=np.uint8)
    np.random.seed(4)
    out = RandomErasing(prob=1.0, fill=NORMALISED_MEAN_FILL_BGR)(
        dict(img=img))['img']
    top, bottom, left, right = _changed_box(img, out)
    assert (out[top:bottom, left:right] == [127, 142, 152]).all()
