import cv2
import numpy as np
import pytest

from mmreid_rcl.visualization import draw_ranking, save_ranking
from mmreid_rcl.visualization.ranking import (MATCH_COLOR, MISMATCH_COLOR,
                                              UNKNOWN_COLOR)

CELL_W, CELL_H, BORDER, GAP = 20, 40, 2, 4
TILE_W, TILE_H = CELL_W + 2 * BORDER, CELL_H + 2 * BORDER
ROW_H = TILE_H + 15 + GAP  # one caption line of 13 px + 2
FIRST_LEFT = GAP + TILE_W + 3 * GAP  # after the query and separator


def uniform(bgr, h=30, w=15):
    return np.full((h, w, 3), bgr, dtype=np.uint8)


def tile_origin(row, col):
    """(top, left) of gallery tile ``col`` in query row ``row``."""
    return GAP + row * ROW_H, FIRST_LEFT + col * (TILE_W + GAP)


def draw(**kwargs):
    return draw_ranking(
        cell_size=(CELL_W, CELL_H), border=BORDER, gap=GAP, **kwargs)


@pytest.fixture
def picture_png(tmp_path):
    # Query 0 from a file, the rest arrays (BGR).
    query_file = str(tmp_path / 'query.png')
    cv2.imwrite(query_file, uniform((0, 0, 255)))  # red in BGR
    blue, green_ish = uniform((255, 0, 0)), uniform((0, 128, 0))
    picture = draw(
        query_images=[query_file, blue],
        gallery_images=[[blue, green_ish, blue], [green_ish, blue, None]],
        distances=[[0.1, 0.25, np.inf], [1.5, None, None]],
        matches=[[True, False, None], [False, True, None]])
    path = str(tmp_path / 'out' / 'ranking.png')
    assert save_ranking(path, picture) == path
    return path, picture


def read_rgb(path):
    return cv2.imread(path, cv2.IMREAD_COLOR)[..., ::-1]


def test_size_and_round_trip(picture_png):
    path, picture = picture_png
    # Hand-computed: 2 rows of 63 px below a 4 px gap; query tile, 12 px
    # separator, 3 gallery tiles of 24 + 4 px.
    assert picture.shape == (4 + 2 * 63, 4 + 24 + 12 + 3 * 28, 3)
    assert picture.dtype == np.uint8
    np.testing.assert_array_equal(read_rgb(path), picture)


def test_frames_follow_matches(picture_png):
    image = read_rgb(picture_png[0])
    expected = {(0, 0): MATCH_COLOR, (0, 1): MISMATCH_COLOR,
                (0, 2): UNKNOWN_COLOR, (1, 0): MISMATCH_COLOR,
                (1, 1): MATCH_COLOR}
    for (row, col), colour in expected.items():
        top, left = tile_origin(row, col)
        # Every side of the frame has the colour.
        for y, x in ((top, left + TILE_W // 2), (top + TILE_H - 1, left + 3),
                     (top + TILE_H // 2, left),
                     (top + TILE_H // 2, left + TILE_W - 1)):
            assert tuple(image[y, x]) == colour, (row, col, y, x)
    # Green really is green and red red (RGB order in the file).
    assert MATCH_COLOR[1] > 150 and MATCH_COLOR[0] < 50
    assert MISMATCH_COLOR[0] > 150 and MISMATCH_COLOR[1] < 50
    # The empty slot (row 1, col 2) stays background.
    top, left = tile_origin(1, 2)
    assert (image[top:top + TILE_H, left:left + TILE_W] == 255).all()


def test_images_are_converted_from_bgr(picture_png):
    image = read_rgb(picture_png[0])
    centre = (BORDER + CELL_H // 2, BORDER + CELL_W // 2)
    # Query 0 was a red file, query 1 a blue BGR array.
    assert tuple(image[GAP + centre[0], GAP + centre[1]]) == (255, 0, 0)
    assert tuple(image[GAP + ROW_H + centre[0],
                       GAP + centre[1]]) == (0, 0, 255)
    top, left = tile_origin(0, 1)
    assert tuple(image[top + centre[0], left + centre[1]]) == (0, 128, 0)


def test_distances_written_only_when_finite(picture_png):
    image = read_rgb(picture_png[0])

    def caption_has_ink(row, col):
        top, left = tile_origin(row, col)
        band = image[top + TILE_H + 1:top + TILE_H + 14, left:left + TILE_W]
        return (band < 200).any()

    assert caption_has_ink(0, 0) and caption_has_ink(0, 1)
    assert caption_has_ink(1, 0)
    assert not caption_has_ink(0, 2)  # inf
    assert not caption_has_ink(1, 1)  # None


def test_title_and_labels_add_height(tmp_path):
    base = draw(query_images=[uniform(0)], gallery_images=[[uniform(9)]])
    titled = draw(
        query_images=[uniform(0)],
        gallery_images=[[uniform(9)]],
        title='a fairly long title that wraps over several lines here',
        query_labels=['query 3\nAP 12.5%'])
    assert titled.shape[1] == base.shape[1]
    assert titled.shape[0] > base.shape[0] + 13
    # No identities: grey frames.
    top, left = tile_origin(0, 0)
    assert tuple(base[top, left + 5]) == UNKNOWN_COLOR


def test_palette_png_keeps_frame_colours(picture_png, tmp_path):
    _, picture = picture_png
    path = save_ranking(str(tmp_path / 'small.png'), picture, colors=64)
    image = read_rgb(path)
    assert image.shape == picture.shape
    top, left = tile_origin(0, 0)
    assert np.abs(image[top, left + 5].astype(int) -
                  MATCH_COLOR).max() <= 8
    top, left = tile_origin(0, 1)
    assert np.abs(image[top, left + 5].astype(int) -
                  MISMATCH_COLOR).max() <= 8


def test_errors(tmp_path):
    with pytest.raises(ValueError, match='one row per query'):
        draw(query_images=[uniform(0)], gallery_images=[])
    with pytest.raises(ValueError, match='distances'):
        draw(query_images=[uniform(0)], gallery_images=[[uniform(0)]],
             distances=[[0.1, 0.2]])
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        draw(query_images=[str(tmp_path / 'missing.jpg')],
             gallery_images=[[]])
    with pytest.raises(ValueError, match='uint8'):
        draw(query_images=[np.zeros((4, 4, 3))], gallery_images=[[]])
    with pytest.raises(ValueError, match='.png'):
        save_ranking(str(tmp_path / 'x.jpg'), uniform(0))
