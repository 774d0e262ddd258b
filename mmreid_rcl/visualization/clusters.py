"""A 2-D picture of a clustering: features embedded by t-SNE or PCA,
points coloured by pseudo label, outliers in grey.

Drawn with matplotlib's Agg canvas, without pyplot, so that importing this
module changes no global state.
"""
import os
import os.path as osp
from typing import Optional, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

#: The colour of outliers (label -1); no cluster colour is grey.
OUTLIER_COLOUR = '#b4b4b4'

EMBED_METHODS = ('tsne', 'pca')


def cluster_palette() -> np.ndarray:
    """Distinct, saturated RGBA colours for clusters, without greys.

    The tab20, tab20b and tab20c colours whose channels differ by more than
    0.2 and whose mean is below 0.75: their greys and near-greys are left
    out, so that a cluster is never taken for the outliers, and so are
    their palest shades, hard to see on white.

    Returns:
        np.ndarray: (C, 4) float RGBA colours.
    """
    colours = []
    for name in ('tab20', 'tab20b', 'tab20c'):
        cmap = colormaps[name]
        colours += [cmap(i) for i in range(cmap.N)]
    colours = np.array(colours)
    spread = colours[:, :3].max(1) - colours[:, :3].min(1)
    lightness = colours[:, :3].mean(1)
    return colours[(spread > 0.2) & (lightness < 0.75)]


def label_colours(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """RGBA colours of integer labels: grey for -1, palette colours else.

    Label ``l`` gets palette colour ``perm[l % C]`` for a seeded
    permutation ``perm`` of the C palette colours: clusters with
    neighbouring numbers (often neighbours in the data) get unrelated
    colours, up to C labels get distinct colours, and a label's colour does
    not depend on the other labels drawn.

    Args:
        labels (np.ndarray): int labels (N,), -1 for outliers.
        seed (int): seed of the permutation.

    Returns:
        np.ndarray: (N, 4) float RGBA colours.
    """
    labels = np.asarray(labels, dtype=np.int64)
    palette = cluster_palette()
    out = np.empty((len(labels), 4))
    out[:] = to_rgba(OUTLIER_COLOUR)
    clustered = labels >= 0
    perm = np.random.default_rng(seed).permutation(len(palette))
    out[clustered] = palette[perm[labels[clustered] % len(palette)]]
    return out


def embed_2d(features: np.ndarray,
             method: str = 'tsne',
             seed: int = 0,
             perplexity: float = 30.0) -> np.ndarray:
    """Embed features (N, D) in the plane with scikit-learn.

    Args:
        features (np.ndarray): features (N, D); compared by cosine (they
            are L2-normalised here).
        method (str): ``'tsne'`` (neighbourhoods kept; the picture to look
            at clusters) or ``'pca'`` (the two leading principal axes; fast,
            global structure).
        seed (int): random state of t-SNE / the randomised PCA.
        perplexity (float): t-SNE perplexity, lowered to (N - 1) / 3 for
            few samples.

    Returns:
        np.ndarray: (N, 2) float32 coordinates.
    """
    if method not in EMBED_METHODS:
        raise ValueError(f'unknown embedding method {method!r}; expected one '
                         f'of {EMBED_METHODS}')
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] < 3:
        raise ValueError(
            f'features must be (N, D) with N >= 3, got shape {x.shape}')
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if method == 'pca':
        from sklearn.decomposition import PCA
        return PCA(n_components=2, random_state=seed).fit_transform(x).astype(
            np.float32)
    from sklearn.manifold import TSNE
    perplexity = min(perplexity, (x.shape[0] - 1) / 3)
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        metric='cosine',
        init='pca',
        random_state=seed)
    return tsne.fit_transform(x).astype(np.float32)


def select_subset(labels: np.ndarray,
                  num: int,
                  by: str = 'cluster',
                  seed: int = 0) -> np.ndarray:
    """Indices of about ``num`` samples to draw.

    Args:
        labels (np.ndarray): pseudo labels (N,), -1 for outliers.
        num (int): samples wanted; all of them when ``num >= N``.
        by (str): ``'cluster'``: whole clusters, drawn at random until
            their members reach the share of clustered samples in ``num``,
            plus outliers at random in their share (a cluster's shape stays
            visible); ``'random'``: samples at random.
        seed (int): seed of the draw.

    Returns:
        np.ndarray: sorted int64 indices.
    """
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    if num < 1:
        raise ValueError(f'num must be positive, got {num}')
    if by not in ('cluster', 'random'):
        raise ValueError(f"by must be 'cluster' or 'random', got {by!r}")
    if num >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    if by == 'random':
        return np.sort(rng.choice(n, num, replace=False))
    outliers = np.flatnonzero(labels < 0)
    num_out = int(round(num * len(outliers) / n))
    picked = [rng.choice(outliers, num_out, replace=False)]
    budget = num - num_out
    clusters = np.unique(labels[labels >= 0])
    for c in rng.permutation(clusters):
        if budget <= 0:
            break
        members = np.flatnonzero(labels == c)
        picked.append(members)
        budget -= len(members)
    return np.sort(np.concatenate(picked)).astype(np.int64)


def _scatter(ax, xy: np.ndarray, labels: np.ndarray, point_size: float,
             seed: int) -> None:
    outliers = labels < 0
    # Outliers first, underneath, so they never hide a cluster.
    ax.scatter(
        xy[outliers, 0],
        xy[outliers, 1],
        s=point_size * 0.7,
        c=OUTLIER_COLOUR,
        linewidths=0,
        zorder=1)
    ax.scatter(
        xy[~outliers, 0],
        xy[~outliers, 1],
        s=point_size,
        c=label_colours(labels[~outliers], seed),
        linewidths=0,
        zorder=2)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.margins(0.02)


def draw_clusters(embedding: np.ndarray,
                  labels: np.ndarray,
                  true_ids: Optional[np.ndarray] = None,
                  title: Optional[str] = None,
                  point_size: float = 10.0,
                  panel_size: float = 6.0,
                  seed: int = 0) -> Figure:
    """Scatter a 2-D embedding coloured by pseudo label (outliers grey).

    Args:
        embedding (np.ndarray): (N, 2) coordinates.
        labels (np.ndarray): pseudo labels (N,), -1 for outliers.
        true_ids (np.ndarray, optional): true identities (N,); when given, a
            second panel colours the same points by identity.
        title (str, optional): the figure's title.
        point_size (float): marker area in points^2.
        panel_size (float): width and height of a panel in inches.
        seed (int): seed of the colour assignment.

    Returns:
        Figure: the figure, on an Agg canvas.
    """
    xy = np.asarray(embedding, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f'embedding must be (N, 2), got {xy.shape}')
    if labels.shape != (len(xy), ):
        raise ValueError(f'{labels.shape} labels for {len(xy)} points')
    panels = [('pseudo label', labels)]
    if true_ids is not None:
        true_ids = np.asarray(true_ids, dtype=np.int64)
        if true_ids.shape != labels.shape:
            raise ValueError(
                f'{true_ids.shape} true ids for {len(xy)} points')
        panels.append(('true identity', true_ids))
    fig = Figure(figsize=(panel_size * len(panels), panel_size + 0.6),
                 dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, values) in zip(axes, panels):
        _scatter(ax, xy, values, point_size, seed)
        groups = len(np.unique(values[values >= 0]))
        noun = 'clusters' if name == 'pseudo label' else 'identities'
        ax.set_title(
            f'coloured by {name} ({groups} {noun} shown)', fontsize=11)
    num_out = int((labels < 0).sum())
    axes[0].legend(
        handles=[
            Line2D([], [],
                   marker='o',
                   linestyle='',
                   color=OUTLIER_COLOUR,
                   markersize=6)
        ],
        labels=[f'outliers ({num_out} of {len(labels)})'],
        loc='lower right',
        fontsize=9,
        framealpha=0.8)
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig


def plot_clusters(embedding: np.ndarray,
                  labels: np.ndarray,
                  out_file: str,
                  true_ids: Optional[np.ndarray] = None,
                  title: Optional[str] = None,
                  dpi: int = 100,
                  **kwargs) -> str:
    """Draw :func:`draw_clusters` into a PNG.

    Args:
        embedding, labels, true_ids, title: see :func:`draw_clusters`.
        out_file (str): the PNG to write (its folder is created).
        dpi (int): resolution.
        **kwargs: ``point_size``, ``panel_size``, ``seed``.

    Returns:
        str: ``out_file``.
    """
    fig = draw_clusters(
        embedding, labels, true_ids=true_ids, title=title, **kwargs)
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file, dpi=dpi)
    return out_file


def summarize_labels(labels: Sequence[int]) -> str:
    """``'C clusters, O outliers of N'`` for a label vector."""
    labels = np.asarray(labels)
    return (f'{len(np.unique(labels[labels >= 0]))} clusters, '
            f'{int((labels < 0).sum())} outliers of {len(labels)}')
