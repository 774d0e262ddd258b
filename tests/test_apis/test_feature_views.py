"""Features of images in several views (mmreid_rcl.apis.feature_views)."""
import cv2
import numpy as np
import pytest

from mmreid_rcl.apis.feature_views import (MIN_CROP, extract_view_features,
                                           image_view, view_plan)


def _image(h=40, w=20, seed=0):
    return np.random.default_rng(seed).integers(
        0, 256, (h, w, 3), dtype=np.uint8)


def test_views_of_an_image():
    image = _image()
    rng = np.random.default_rng(0)
    assert image_view(image, 0, rng) is image
    np.testing.assert_array_equal(image_view(image, 1, rng), image[:, ::-1])
    crops = [image_view(image, 2, np.random.default_rng(s)) for s in range(8)]
    for crop in crops:
        assert crop.shape == image.shape and crop.dtype == np.uint8
    # Seeded: the same generator state gives the same crop; others differ.
    np.testing.assert_array_equal(
        crops[3], image_view(image, 5, np.random.default_rng(3)))
    assert len({c.tobytes() for c in crops}) == len(crops)
    with pytest.raises(ValueError, match='view must be >= 0'):
        image_view(image, -1, rng)


def test_a_crop_view_is_a_resized_window_of_the_image():
    """A hand-made case: a crop of a horizontal ramp resized back keeps
    the ramp's direction and stays within the values of a window of at
    least MIN_CROP of the width."""
    ramp = np.tile(np.arange(100, dtype=np.uint8)[None, :, None],
                   (50, 1, 3))
    for seed in range(10):
        view = image_view(ramp, 2, np.random.default_rng(seed)).astype(int)
        row = view[25, :, 0]
        span = row.max() - row.min()
        assert span >= MIN_CROP * 100 - 3
        assert (np.diff(row) >= 0).all() or (np.diff(row) <= 0).all()


def test_view_plan():
    assert view_plan(3, 7) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1),
                               (1, 2), (2, 0)]
    with pytest.raises(ValueError, match='at least one image'):
        view_plan(0, 5)


def test_extract_view_features(tmp_path):
    files = []
    for i in range(3):
        path = str(tmp_path / f'{i}.png')
        cv2.imwrite(path, _image(seed=i))
        files.append(path)

    calls = []

    def extract(images):
        calls.append(len(images))
        return np.stack([im.reshape(-1).astype(np.float32)[:16]
                         for im in images])

    feats, names = extract_view_features(extract, files, 8, seed=1,
                                         chunk=3, progress=False)
    assert feats.shape == (8, 16) and feats.dtype == np.float32
    assert calls == [3, 3, 2]
    assert names[:4] == [f'{files[0]}#0', f'{files[1]}#0', f'{files[2]}#0',
                         f'{files[0]}#1']
    # View 0 is the image and view 1 its mirror, as read from disk.
    first = cv2.imread(files[0])
    np.testing.assert_array_equal(feats[0], first.reshape(-1)[:16])
    np.testing.assert_array_equal(feats[3],
                                  first[:, ::-1].reshape(-1)[:16])
    # The rows do not depend on the chunking; the crops on the seed.
    again, _ = extract_view_features(extract, files, 8, seed=1, chunk=100,
                                     progress=False)
    np.testing.assert_array_equal(again, feats)
    other, _ = extract_view_features(extract, files, 8, seed=2,
                                     progress=False)
    np.testing.assert_array_equal(other[:6], feats[:6])
    assert not np.array_equal(other[6:], feats[6:])
    with pytest.raises(FileNotFoundError, match='missing.png'):
        extract_view_features(extract, [str(tmp_path / 'missing.png')], 1,
                              progress=False)
    corrupt = tmp_path / 'corrupt.jpg'
    corrupt.write_bytes(b'not an image')
    with pytest.raises(ValueError, match='cannot decode the image .*corrupt'):
        extract_view_features(extract, [str(corrupt)], 1, progress=False)
