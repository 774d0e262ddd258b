"""Training curves of one or several runs, drawn from their scalar logs.

The figures come from the ``scalars.json`` files mmengine's
``LocalVisBackend`` writes (see :mod:`mmreid_rcl.utils.run_logs`); a
resumed run's later timestamp folders override the steps it re-ran. The
x axis of every panel is the number of epochs trained: the training loss
and learning rate at the fraction of an epoch they were logged at, a
clustering at the number of epochs the model that made it had trained
(the clustering at 0 is the initial model's; the last point, when logged,
is the diagnostic clustering by the final model), and mAP / rank-1 after
that many epochs (0: before training, ``val_init``).

Drawn with matplotlib's Agg canvas, without pyplot, so that importing this
module changes no global state.
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Union

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from mmreid_rcl.utils.run_logs import (epoch_summary, load_scalar_records,
                                       scalar_files)

# One colour per run (matplotlib's tab10).
RUN_COLOURS = ('#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd',
               '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf')


def _array(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


@dataclass
class TrainingCurves:
    """The curves of one run, each an (x, y) pair of float arrays.

    Attributes:
        work_dir (str): the run's work dir.
        iter_x, loss, lr: per logged iteration; ``iter_x`` in epochs.
        epoch_loss_x, epoch_loss: mean of the logged losses of each epoch,
            at the middle of the epoch.
        cluster_x, clusters, outliers, ari, nmi: per clustering (NaN when
            not logged), at the epochs trained by the model that made it.
        metric_x, mAP, rank1: evaluation after ``metric_x`` epochs (0 is
            the evaluation before training).
        iters_per_epoch (float): the epoch length the iteration axis was
            scaled with (NaN without training records).
    """
    work_dir: str
    iter_x: np.ndarray = field(default_factory=lambda: _array([]))
    loss: np.ndarray = field(default_factory=lambda: _array([]))
    lr: np.ndarray = field(default_factory=lambda: _array([]))
    epoch_loss_x: np.ndarray = field(default_factory=lambda: _array([]))
    epoch_loss: np.ndarray = field(default_factory=lambda: _array([]))
    cluster_x: np.ndarray = field(default_factory=lambda: _array([]))
    clusters: np.ndarray = field(default_factory=lambda: _array([]))
    outliers: np.ndarray = field(default_factory=lambda: _array([]))
    ari: np.ndarray = field(default_factory=lambda: _array([]))
    nmi: np.ndarray = field(default_factory=lambda: _array([]))
    metric_x: np.ndarray = field(default_factory=lambda: _array([]))
    mAP: np.ndarray = field(default_factory=lambda: _array([]))
    rank1: np.ndarray = field(default_factory=lambda: _array([]))
    iters_per_epoch: float = float('nan')


def _iters_per_epoch(iters: np.ndarray, epochs: np.ndarray) -> float:
    """Epoch length from the last iteration logged in each epoch.

    LoggerHook always logs an epoch's last iteration, so the ends of
    consecutive complete epochs are an epoch length apart; the median
    ignores an unfinished last epoch.
    """
    ends = {}
    for it, ep in zip(iters, epochs):
        ends[ep] = max(ends.get(ep, 0), it)
    eps = sorted(ends)
    lengths = [ends[b] - ends[a] for a, b in zip(eps, eps[1:]) if b == a + 1]
    if eps and eps[0] == 1:
        lengths.append(ends[1])
    if not lengths:  # a single, unfinished epoch: its own span
        return float(max(iters)) if len(iters) else float('nan')
    return float(np.median(lengths))


def load_training_curves(work_dir: str) -> TrainingCurves:
    """Read the curves of a run from ``<work_dir>/*/vis_data/scalars.json``.

    Args:
        work_dir (str): the run's work dir (all its timestamp folders are
            read, oldest first, later records overriding earlier ones).

    Returns:
        TrainingCurves: the run's curves; a curve that was never logged is
        empty.

    Raises:
        FileNotFoundError: ``work_dir`` is missing or holds no scalar logs.
    """
    if not scalar_files(work_dir):
        raise FileNotFoundError(
            f'{work_dir} holds no scalar logs: expected '
            f'{osp.join(work_dir, "<timestamp>", "vis_data", "scalars.json")}'
            ' as written by a training run with LocalVisBackend')
    train = {}
    for rec in load_scalar_records(work_dir):
        if 'loss' in rec and 'iter' in rec:
            train[int(rec['iter'])] = rec  # a resumed run re-logs steps
    curves = TrainingCurves(work_dir=work_dir)
    if train:
        iters = np.array(sorted(train))
        epochs = np.array([int(train[i].get('epoch', 0)) for i in iters])
        ipe = _iters_per_epoch(iters, epochs)
        curves.iters_per_epoch = ipe
        curves.iter_x = iters / ipe
        curves.loss = _array([train[i]['loss'] for i in iters])
        curves.lr = _array([train[i].get('lr', np.nan) for i in iters])
        uniq = np.unique(epochs)
        curves.epoch_loss_x = uniq - 0.5
        curves.epoch_loss = _array(
            [curves.loss[epochs == e].mean() for e in uniq])

    summary = epoch_summary(work_dir)
    rows = [r for r in summary['epochs'] if 'cluster_clusters' in r]
    points = [(r['epoch'] - 1, {
        k[len('cluster_'):]: v
        for k, v in r.items() if k.startswith('cluster_')
    }) for r in rows]
    final = summary['final_cluster']
    if final and 'clusters' in final:
        last = len(summary['epochs'])
        points = [p for p in points if p[0] < last] + [(last, final)]
    curves.cluster_x = _array([x for x, _ in points])
    for key in ('clusters', 'outliers', 'ari', 'nmi'):
        setattr(curves, key, _array([p.get(key, np.nan) for _, p in points]))

    metric_rows = []
    if 'mAP' in summary['initial']:
        metric_rows.append((0, summary['initial']))
    metric_rows += [(r['epoch'], r) for r in summary['epochs'] if 'mAP' in r]
    curves.metric_x = _array([x for x, _ in metric_rows])
    curves.mAP = _array([r['mAP'] for _, r in metric_rows])
    curves.rank1 = _array([r.get('rank1', np.nan) for _, r in metric_rows])
    return curves


def _no_data(ax) -> None:
    ax.text(
        0.5,
        0.5,
        'not logged',
        ha='center',
        va='center',
        color='0.5',
        transform=ax.transAxes)


def _run_labels(runs: Sequence[TrainingCurves],
                labels: Optional[Sequence[str]]) -> Sequence[str]:
    """The legend label of each run: ``labels`` checked, or the dirs' names."""
    if not runs:
        raise ValueError('draw_training_curves needs at least one run')
    if labels is None:
        labels = [osp.basename(osp.normpath(r.work_dir)) for r in runs]
    if len(labels) != len(runs):
        raise ValueError(f'{len(labels)} labels for {len(runs)} runs')
    return labels


def _plot_run(axes: np.ndarray, run: TrainingCurves, colour: str,
              drawn: dict) -> None:
    """Draw one run's curves into the six panels, marking those it fills."""
    ax_loss, ax_lr, ax_clu, ax_out, ax_qual, ax_met = axes.ravel()
    style = dict(linewidth=1.6, markersize=4)
    if len(run.loss):
        ax_loss.plot(run.iter_x, run.loss, color=colour, linewidth=0.8,
                     alpha=0.45)
        ax_loss.plot(run.epoch_loss_x, run.epoch_loss, 'o-', color=colour,
                     **style)
        drawn[ax_loss] = True
    if np.isfinite(run.lr).any():
        ax_lr.plot(run.iter_x, run.lr, color=colour, **style)
        drawn[ax_lr] = True
    for ax, values in ((ax_clu, run.clusters), (ax_out, run.outliers)):
        if np.isfinite(values).any():
            ax.plot(run.cluster_x, values, 'o-', color=colour, **style)
            drawn[ax] = True
    for values, ls in ((run.ari, '-'), (run.nmi, '--')):
        if np.isfinite(values).any():
            ax_qual.plot(run.cluster_x, values, 'o', linestyle=ls,
                         color=colour, **style)
            drawn[ax_qual] = True
    for values, ls in ((run.mAP, '-'), (run.rank1, '--')):
        if np.isfinite(values).any():
            ax_met.plot(run.metric_x, values, 'o', linestyle=ls,
                        color=colour, **style)
            drawn[ax_met] = True


def _label_panels(axes: np.ndarray, drawn: dict) -> None:
    """Titles, axis labels and grids; 'not logged' on the empty panels."""
    ax_loss, ax_lr, ax_clu, ax_out, ax_qual, ax_met = axes.ravel()
    ax_loss.set(title='training loss', ylabel='loss')
    ax_lr.set(title='learning rate', ylabel='lr')
    ax_lr.ticklabel_format(axis='y', style='sci', scilimits=(-3, 3))
    ax_clu.set(title='pseudo identities (clusters)', ylabel='clusters')
    ax_out.set(title='outliers (images left out)', ylabel='images')
    ax_qual.set(title='pseudo labels vs. true ids', ylabel='score')
    ax_met.set(title='evaluation (query / gallery)', ylabel='%')
    for ax in (ax_loss, ax_lr, ax_met):
        ax.set_xlabel('epochs trained')
    for ax in (ax_clu, ax_out, ax_qual):
        ax.set_xlabel('epochs trained by the clustering model')
    for ax in axes.ravel():
        ax.grid(True, color='0.9')
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if not drawn[ax]:
            _no_data(ax)


def _key_legend(ax, handles: List[Line2D], labels: List[str],
                loc: str) -> None:
    """A legend that explains a panel's line styles."""
    ax.legend(
        handles=handles, labels=labels, fontsize=8, handlelength=3.5,
        loc=loc)


def _add_panel_legends(axes: np.ndarray) -> None:
    """Legends of the loss, pseudo-label quality and evaluation panels."""
    ax_loss, _, _, _, ax_qual, ax_met = axes.ravel()
    black = dict(color='0.2', linewidth=1.6)
    _key_legend(ax_loss, [
        Line2D([], [], alpha=0.45, **black),
        Line2D([], [], marker='o', **black)
    ], ['logged (smoothed)', 'epoch mean'], 'upper right')
    for ax, labels in ((ax_qual, ['ARI', 'NMI']),
                       (ax_met, ['mAP', 'rank-1'])):
        _key_legend(ax, [
            Line2D([], [], marker='o', **black),
            Line2D([], [], marker='o', linestyle='--', **black)
        ], labels, 'best')


def _add_run_legend_and_title(fig: Figure, labels: Sequence[str],
                              title: Optional[str]) -> None:
    """The run colours' legend (several runs), the title, and the layout."""
    if title is None and len(labels) == 1:
        title = labels[0]
    top = 0.975 if title else 1.0
    if len(labels) > 1:
        fig.legend(
            handles=[
                Line2D([], [],
                       color=RUN_COLOURS[i % len(RUN_COLOURS)],
                       linewidth=2.5) for i in range(len(labels))
            ],
            labels=list(labels),
            loc='upper center',
            ncol=min(len(labels), 6),
            bbox_to_anchor=(0.5, top),
            frameon=False)
        top -= 0.035
    if title:
        fig.suptitle(title, fontsize=13, y=0.995)
    fig.tight_layout(rect=(0, 0, 1, top))


def draw_training_curves(runs: Sequence[TrainingCurves],
                         labels: Optional[Sequence[str]] = None,
                         title: Optional[str] = None) -> Figure:
    """A 2 x 3 figure of the curves of one or several runs.

    Panels: training loss (per logged iteration, thin, and the mean of each
    epoch, dots), learning rate, clusters, outliers, pseudo-label ARI
    (solid) and NMI (dashed), mAP (solid) and rank-1 (dashed). One colour
    per run.

    Args:
        runs (Sequence[TrainingCurves]): the runs, at least one.
        labels (Sequence[str], optional): a legend label per run; defaults
            to the work dirs' names (no legend for a single run).
        title (str, optional): the figure's title.

    Returns:
        Figure: the figure, on an Agg canvas.
    """
    labels = _run_labels(runs, labels)
    fig = Figure(figsize=(13, 7.2), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    drawn = {ax: False for ax in axes.ravel()}
    for i, run in enumerate(runs):
        _plot_run(axes, run, RUN_COLOURS[i % len(RUN_COLOURS)], drawn)
    _label_panels(axes, drawn)
    _add_panel_legends(axes)
    _add_run_legend_and_title(fig, labels, title)
    return fig


def plot_training_curves(work_dirs: Union[str, Sequence[str]],
                         out_file: str,
                         labels: Optional[Sequence[str]] = None,
                         title: Optional[str] = None,
                         dpi: int = 100) -> str:
    """Draw the training curves of one or several runs into a PNG.

    Args:
        work_dirs (str | Sequence[str]): the runs' work dirs.
        out_file (str): the PNG to write (its folder is created).
        labels (Sequence[str], optional): legend labels, one per run.
        title (str, optional): figure title.
        dpi (int): resolution; the figure is 13 x 7.2 inches.

    Returns:
        str: ``out_file``.
    """
    if isinstance(work_dirs, str):
        work_dirs = [work_dirs]
    runs: List[TrainingCurves] = [load_training_curves(d) for d in work_dirs]
    fig = draw_training_curves(runs, labels=labels, title=title)
    folder = osp.dirname(osp.abspath(out_file))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(out_file, dpi=dpi)
    return out_file
