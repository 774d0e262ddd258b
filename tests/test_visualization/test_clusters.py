"""The cluster picture: colours, subsets, embedding, outliers in grey."""
import numpy as np
import pytest
from matplotlib.colors import to_rgba

from mmreid_rcl.visualization.clusters import (OUTLIER_COLOUR, cluster_palette,
                                               draw_clusters, embed_2d,
                                               label_colours, plot_clusters,
                                               select_subset)

GREY = np.array(to_rgba(OUTLIER_COLOUR)[:3])


def test_palette_has_no_grey():
    palette = cluster_palette()
    assert len(palette) >= 30
    spread = palette[:, :3].max(1) - palette[:, :3].min(1)
    assert spread.min() > 0.2
    assert len(np.unique(palette, axis=0)) == len(palette)


def test_label_colours():
    labels = np.array([-1, 0, 1, 0, 5, -1, 2])
    colours = label_colours(labels)
    assert colours.shape == (7, 4)
    np.testing.assert_allclose(colours[[0, 5], :3], [GREY, GREY])
    np.testing.assert_allclose(colours[1], colours[3])  # same cluster
    clustered = colours[[1, 2, 4, 6]]
    assert len(np.unique(clustered, axis=0)) == 4  # distinct clusters
    # A cluster's colour does not depend on the other samples drawn.
    np.testing.assert_allclose(label_colours(np.array([5]))[0], colours[4])


def _pixel(fig, ax, xy):
    """RGB (0-1) of the pixel at data point ``xy`` of a drawn figure."""
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())
    x, y = ax.transData.transform(xy)
    return image[int(round(image.shape[0] - y)), int(round(x)), :3] / 255.


def test_outliers_are_drawn_grey_and_clusters_in_colour():
    xy = np.array([[0., 0.], [10., 0.], [0., 10.], [10., 10.], [5., 5.]])
    labels = np.array([-1, 0, 1, -1, 1])
    fig = draw_clusters(xy, labels, point_size=300, panel_size=3)
    ax = fig.axes[0]
    expected = label_colours(labels)
    for point, label, colour in zip(xy, labels, expected):
        pixel = _pixel(fig, ax, point)
        if label < 0:
            np.testing.assert_allclose(pixel, GREY, atol=2 / 255)
        else:
            np.testing.assert_allclose(pixel, colour[:3], atol=2 / 255)
            assert pixel.max() - pixel.min() > 0.2  # not grey
    assert 'outliers (2 of 5)' in [
        t.get_text() for t in ax.get_legend().get_texts()
    ]
    assert ax.get_title() == 'coloured by pseudo label (2 clusters shown)'


def test_true_id_panel_and_png_size(tmp_path):
    rng = np.random.default_rng(0)
    xy = rng.normal(size=(30, 2))
    labels = np.repeat([0, 1, 2, -1, 3], 6)
    true_ids = np.repeat(np.arange(10), 3)
    out = plot_clusters(
        xy, labels, str(tmp_path / 'sub' / 'c.png'), true_ids=true_ids,
        panel_size=4, dpi=50)
    from PIL import Image
    with Image.open(out) as img:
        assert img.size == (400, 230)  # 2 x 4 by 4.6 inches at 50 dpi
    fig = draw_clusters(xy, labels, true_ids=true_ids)
    assert fig.axes[1].get_title() == \
        'coloured by true identity (10 identities shown)'
    with pytest.raises(ValueError, match='true ids for 30 points'):
        draw_clusters(xy, labels, true_ids=true_ids[:5])
    with pytest.raises(ValueError, match=r'embedding must be \(N, 2\)'):
        draw_clusters(rng.normal(size=(30, 3)), labels)


def test_select_subset_keeps_whole_clusters():
    labels = np.array([0] * 10 + [1] * 10 + [2] * 10 + [3] * 10 + [-1] * 20)
    keep = select_subset(labels, 30, by='cluster', seed=1)
    kept = labels[keep]
    for c in np.unique(kept[kept >= 0]):
        assert (kept == c).sum() == 10  # a cluster is all in or all out
    assert (kept < 0).sum() == 10  # outliers in their share: 30 * 20 / 60
    assert (kept >= 0).sum() == 20
    assert np.all(np.diff(keep) > 0)
    rand = select_subset(labels, 25, by='random', seed=1)
    assert len(rand) == 25 and len(np.unique(rand)) == 25
    np.testing.assert_array_equal(select_subset(labels, 100), np.arange(60))
    with pytest.raises(ValueError, match="by must be 'cluster' or 'random'"):
        select_subset(labels, 10, by='id')
    with pytest.raises(ValueError, match='num must be positive'):
        select_subset(labels, 0)


def test_embed_2d_separates_blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16))
    feats = np.repeat(centres, 20, axis=0) + 0.05 * rng.normal(size=(60, 16))
    truth = np.repeat(np.arange(3), 20)
    for method in ('pca', 'tsne'):
        xy = embed_2d(feats, method, seed=0)
        assert xy.shape == (60, 2) and xy.dtype == np.float32
        # Every point is nearer to its own blob's centre than to another.
        means = np.stack([xy[truth == k].mean(0) for k in range(3)])
        nearest = np.linalg.norm(
            xy[:, None] - means[None], axis=2).argmin(1)
        np.testing.assert_array_equal(nearest, truth)
    with pytest.raises(ValueError, match='unknown embedding method'):
        embed_2d(feats, 'umap')
    with pytest.raises(ValueError, match='N >= 3'):
        embed_2d(feats[:2], 'pca')
