import numpy as np
import pytest

from mmreid_rcl.datasets.transforms import RandomPadCrop
from mmreid_rcl.registry import TRANSFORMS


def _pad_then_crop(img, padding, top, left, pad_val=0):
    """The textbook definition: pad every border, crop at (top, left)."""
    h, w = img.shape[:2]
    pad = ((padding, padding), (padding, padding)) + ((0, 0), ) * (
        img.ndim - 2)
    padded = np.pad(img, pad, constant_values=pad_val)
    return padded[top:top + h, left:left + w]


def _image(h=8, w=6, c=3):
    # All values >= 1 so that padded zeros are recognisable.
    return (np.arange(h * w * c).reshape(h, w, c) % 250 + 1).astype(np.uint8)


def test_keeps_size_and_matches_pad_then_crop():
    img = _image()
    transform = RandomPadCrop(padding=2)
    np.random.seed(0)
    seen_shifts = set()
    for _ in range(40):
        out = transform(dict(img=img.copy()))['img']
        assert out.shape == img.shape and out.dtype == img.dtype
        # Exactly one crop window of the padded image gives this output.
        matches = [(t, s) for t in range(5) for s in range(5)
                   if np.array_equal(out, _pad_then_crop(img, 2, t, s))]
        assert len(matches) == 1
        seen_shifts.add(matches[0])
    # The content really moves, over the whole range of offsets.
    assert len(seen_shifts) > 10
    assert any(shift != (2, 2) for shift in seen_shifts)


def test_known_shift_by_hand():
    img = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=np.uint8)
    transform = RandomPadCrop(padding=1)
    # Crop window at the padded image's top-left corner: content moves by
    # one pixel down and right.
    transform._random_shift = lambda: (True, 1, 1)
    out = transform(dict(img=img))['img']
    np.testing.assert_array_equal(out, [[0, 0, 0], [0, 1, 2], [0, 4, 5]])
    transform._random_shift = lambda: (True, -1, 0)
    out = transform(dict(img=img))['img']
    np.testing.assert_array_equal(out, [[4, 5, 6], [7, 8, 9], [0, 0, 0]])


def test_pad_val_per_channel():
    img = _image(4, 4)
    transform = RandomPadCrop(padding=3, pad_val=(10, 20, 30))
    # Down 3 and left 3: only input pixel (0, 3) stays, at (3, 0).
    transform._random_shift = lambda: (True, 3, -3)
    out = transform(dict(img=img))['img']
    expected = np.empty_like(img)
    expected[...] = (10, 20, 30)
    expected[3, 0] = img[0, 3]
    np.testing.assert_array_equal(out, expected)


def test_prob_zero_is_identity_and_padding_larger_than_image():
    img = _image(3, 3)
    out = RandomPadCrop(padding=5, prob=0.0)(dict(img=img))['img']
    assert out is img
    transform = RandomPadCrop(padding=5)
    transform._random_shift = lambda: (True, 4, 0)
    np.testing.assert_array_equal(transform(dict(img=img))['img'], 0)


def test_grayscale_and_registry():
    img = _image(5, 5, 1)[..., 0]
    transform = TRANSFORMS.build(dict(type='RandomPadCrop', padding=1))
    np.random.seed(1)
    out = transform(dict(img=img))['img']
    assert out.shape == (5, 5)


@pytest.mark.parametrize('kwargs', [
    dict(padding=-1), dict(padding=1.5), dict(prob=1.5),
    dict(pad_val='zero')
])
def test_bad_arguments(kwargs):
    with pytest.raises((ValueError, TypeError), match='RandomPadCrop'):
        RandomPadCrop(**kwargs)


def test_pad_val_channel_mismatch():
    transform = RandomPadCrop(padding=1, pad_val=(1, 2))
    transform._random_shift = lambda: (True, 1, 1)
    with pytest.raises(ValueError, match='2 values but the image has 3'):
        transform(dict(img=_image()))
