"""The resized copy of a data set: same files and names, images resized."""
import os
import shutil

import cv2
import numpy as np
import pytest

from mmreid_rcl.datasets import CUHK03Dataset
from mmreid_rcl.datasets.resized_copy import write_resized_copy


@pytest.fixture
def small_copy_source(cuhk03_root, tmp_path):
    """A few real CUHK03 images per split, plus a text file."""
    src = tmp_path / 'src'
    for folder in ('bounding_box_train', 'query', 'bounding_box_test'):
        (src / folder).mkdir(parents=True)
        for name in sorted(os.listdir(cuhk03_root / folder))[:6]:
            shutil.copyfile(cuhk03_root / folder / name, src / folder / name)
    (src / 'readme.txt').write_text('notes')
    return src


def test_resized_copy_keeps_names_and_resizes(small_copy_source, tmp_path):
    dst = tmp_path / 'dst'
    done = write_resized_copy(
        str(small_copy_source), str(dst), size=(64, 32), quality=95)
    assert done['images'] == 18 and done['other_files'] == 1
    assert (dst / 'readme.txt').read_text() == 'notes'
    for folder in ('bounding_box_train', 'query', 'bounding_box_test'):
        assert (sorted(os.listdir(dst / folder)) == sorted(
            os.listdir(small_copy_source / folder)))
    name = sorted(os.listdir(small_copy_source / 'query'))[0]
    out = cv2.imread(str(dst / 'query' / name))
    assert out.shape == (64, 32, 3)
    # Reference: area resize of the original, pixel for pixel, up to the
    # JPEG re-encoding at quality 95 (a few grey levels on average).
    ref = cv2.resize(
        cv2.imread(str(small_copy_source / 'query' / name)), (32, 64),
        interpolation=cv2.INTER_AREA)
    assert np.abs(out.astype(int) - ref.astype(int)).mean() < 4
    # The copy is read by the same dataset class.
    assert len(CUHK03Dataset(str(dst), split='train')) == 6


def test_resized_copy_bad_input(small_copy_source, tmp_path):
    with pytest.raises(FileExistsError, match='choose a new folder'):
        write_resized_copy(
            str(small_copy_source), str(small_copy_source), size=(64, 32))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        write_resized_copy(
            str(tmp_path / 'nowhere'), str(tmp_path / 'x'), size=(64, 32))
    with pytest.raises(FileNotFoundError, match="folder 'train' not found"):
        write_resized_copy(
            str(small_copy_source),
            str(tmp_path / 'y'),
            size=(64, 32),
            folders=['train'])
    with pytest.raises(ValueError, match='quality must be in 1..100'):
        write_resized_copy(
            str(small_copy_source), str(tmp_path / 'z'), (64, 32), quality=0)
    broken = small_copy_source / 'query' / '0999_c1s1_000000_00.jpg'
    broken.write_bytes(b'not a jpeg')
    with pytest.raises(ValueError, match='cannot read image'):
        write_resized_copy(
            str(small_copy_source), str(tmp_path / 'w'), size=(64, 32))
