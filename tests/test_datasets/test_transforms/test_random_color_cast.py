import numpy as np
import pytest

from mmreid_rcl.datasets.transforms import RandomColorCast
from mmreid_rcl.registry import TRANSFORMS


def _image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(6, 4, 3), dtype=np.uint8)


def test_hand_computed_pixel():
    img = np.array([[[100, 200, 50]]], dtype=np.uint8)
    transform = RandomColorCast(
        gain_range=(0.5, 0.5), brightness_range=(2.0, 2.0))
    # gains 0.5, brightness 2: the product is exactly 1 on every channel.
    out = transform(dict(img=img.copy()))['img']
    np.testing.assert_array_equal(out, img)
    transform = RandomColorCast(
        gain_range=(1.5, 1.5), brightness_range=(1.1, 1.1))
    out = transform(dict(img=img.copy()))['img']
    # 100 * 1.65 = 165, 200 * 1.65 = 330 -> 255 (clipped), 50 * 1.65 = 82.5
    # -> 83 (rounded).
    np.testing.assert_array_equal(out, [[[165, 255, 83]]])
    assert out.dtype == np.uint8


def test_random_factors_match_slow_reference():
    img = _image()
    transform = TRANSFORMS.build(
        dict(type='RandomColorCast', gain_range=(0.7, 1.3),
             brightness_range=(0.6, 1.4)))
    np.random.seed(3)
    out = transform(dict(img=img.copy()))['img']
    np.random.seed(3)
    gains = np.random.uniform(0.7, 1.3, size=3)
    bright = np.random.uniform(0.6, 1.4)
    expected = np.empty_like(img)
    for y in range(img.shape[0]):
        for x in range(img.shape[1]):
            for c in range(3):
                v = float(img[y, x, c]) * float(
                    np.float32(gains[c] * bright))
                expected[y, x, c] = min(255, max(0, int(np.floor(v + 0.5))))
    # float32 arithmetic may round a .5 boundary the other way.
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
    assert not np.array_equal(out, img)


def test_channels_get_different_gains_over_draws():
    img = np.full((2, 2, 3), 100, dtype=np.uint8)
    transform = RandomColorCast()
    np.random.seed(0)
    outs = [transform(dict(img=img.copy()))['img'][0, 0] for _ in range(20)]
    outs = np.stack(outs).astype(int)
    assert (outs[:, 0] != outs[:, 1]).any()
    assert outs.min() >= int(100 * 0.7 * 0.6) - 1
    assert outs.max() <= int(100 * 1.3 * 1.45) + 1


def test_prob_zero_keeps_image():
    img = _image()
    out = RandomColorCast(prob=0.0)(dict(img=img.copy()))['img']
    np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize('kwargs, match', [
    (dict(gain_range=(1.3, 0.7)), 'gain_range'),
    (dict(brightness_range=(0, 1)), 'brightness_range'),
    (dict(gain_range=1.0), 'gain_range'),
    (dict(prob=2.0), 'prob'),
])
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandomColorCast(**kwargs)


def test_bad_image():
    with pytest.raises(ValueError, match='uint8'):
        RandomColorCast()(dict(img=np.zeros((4, 4, 3), np.float32)))
