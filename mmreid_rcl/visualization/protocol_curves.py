"""Per-epoch curves of a protocol's variants over seeds, from run summaries.

Each run is a summary of :func:`mmreid_rcl.utils.run_logs.epoch_summary`
(or of :func:`mmreid_rcl.utils.public_run_logs.public_run_summary`): the
figures kept with the project (``docs/ablation/<protocol>/runs``), so that
the picture can be drawn again from a fresh checkout. Three panels, the x
axis the epochs trained: mAP (0: before training), the number of clusters
and the pseudo labels' ARI of the clustering each epoch trained on (at the
epochs its model had trained). One colour per variant, a thin line per
seed and a thick line for the mean over the seeds that reached an epoch.

Drawn with matplotlib's Agg canvas, without pyplot.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from .training_curves import RUN_COLOURS

# (panel title, y label, how a run's summary gives its (x, y) points)
_PANELS = (
    ('mAP', '%', 'metric', 'mAP'),
    ('pseudo identities (clusters)', 'clusters', 'cluster',
     'cluster_clusters'),
    ('pseudo labels vs. true ids (ARI)', 'ARI', 'cluster', 'cluster_ari'),
)


def run_points(summary: dict, kind: str,
               key: str) -> Tuple[np.ndarray, np.ndarray]:
    """The (epochs trained, value) points of one figure of a run.

    ``kind='metric'``: an evaluation after ``epoch`` epochs (the initial
    one at 0); ``kind='cluster'``: the clustering the epoch trained on,
    made by the model after ``epoch - 1`` epochs.
    """
    xs, ys = [], []
    if kind == 'metric' and (summary.get('initial') or {}).get(key) \
            is not None:
        xs.append(0)
        ys.append(summary['initial'][key])
    for row in summary.get('epochs') or []:
        if row.get(key) is None:
            continue
        xs.append(row['epoch'] - (1 if kind == 'cluster' else 0))
        ys.append(row[key])
    return np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)


def _mean_curve(curves: List[Tuple[np.ndarray, np.ndarray]]
                ) -> Tuple[np.ndarray, np.ndarray]:
    """The mean at each x over the runs that have a point there."""
    xs = np.unique(np.concatenate([x for x, _ in curves]))
    means = [np.mean([y[x == at][0] for x, y in curves if (x == at).any()])
             for at in xs]
    return xs, np.asarray(means)


def draw_protocol_curves(variants: Dict[str, Sequence[Tuple[int, dict]]],
                         title: Optional[str] = None) -> Figure:
    """A 1 x 3 figure of the per-epoch curves of several variants.

    Args:
        variants (dict): label -> list of (seed, run summary); variants
            without runs are left out.
        title (str, optional): the figure's title.

    Returns:
        Figure: the figure, on an Agg canvas.

    Raises:
        ValueError: no run of any variant has a per-epoch figure.
    """
    fig = Figure(figsize=(14, 4.6), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    handles, labels = [], []
    for i, (label, runs) in enumerate(
            (label, runs) for label, runs in variants.items() if runs):
        colour = RUN_COLOURS[i % len(RUN_COLOURS)]
        drawn = False
        for ax, (_, _, kind, key) in zip(axes, _PANELS):
            curves = [run_points(summary, kind, key) for _, summary in runs]
            curves = [(x, y) for x, y in curves if len(x)]
            for x, y in curves:
                ax.plot(x, y, color=colour, linewidth=0.8, alpha=0.4)
            if curves:
                ax.plot(*_mean_curve(curves), 'o-', color=colour,
                        linewidth=2.2, markersize=3.5)
                drawn = True
        if drawn:
            handles.append(Line2D([], [], color=colour, linewidth=2.2))
            labels.append(f'{label} ({len(runs)} seed'
                          f'{"s" if len(runs) != 1 else ""})')
    if not handles:
        raise ValueError('no run has per-epoch figures to draw')
    for ax, (panel, ylabel, kind, _) in zip(axes, _PANELS):
        ax.set(title=panel, ylabel=ylabel,
               xlabel='epochs trained' if kind == 'metric' else
               'epochs trained by the clustering model')
        ax.grid(True, color='0.9')
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.legend(handles=handles, labels=labels, loc='upper center',
               ncol=min(len(labels), 4), frameon=False,
               bbox_to_anchor=(0.5, 0.93 if title else 1.0))
    if title:
        fig.suptitle(title, fontsize=12, y=0.995)
    fig.text(0.995, 0.005, 'thin: one seed; thick: mean over seeds',
             ha='right', va='bottom', fontsize=8, color='0.4')
    fig.tight_layout(rect=(0, 0.02, 1, 0.86 if title else 0.9))
    return fig


def plot_protocol_curves(variants: Dict[str, Sequence[Tuple[int, dict]]],
                         out_file: str,
                         title: Optional[str] = None,
                         dpi: int = 100) -> str:
    """Draw :func:`draw_protocol_curves` into a PNG; returns ``out_file``."""
    fig = draw_protocol_curves(variants, title=title)
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file, dpi=dpi)
    return out_file
