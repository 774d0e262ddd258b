"""Reading the per-epoch figures of a training run from its scalar logs.

mmengine's LocalVisBackend writes ``<work_dir>/<timestamp>/vis_data/
scalars.json`` (one JSON object per line, with a ``step``); a resumed run
adds a new timestamp folder. The figures used here:

- ``val_init/reid/*`` at step 0: the model before training;
- ``cluster/*`` at step e: the clustering made after e epochs, before
  epoch e + 1;
- ``final_cluster/*``: the diagnostic clustering by the final model. Logs
  written before that prefix existed (no ``cluster/format`` key) logged it
  as ``cluster/*`` at the last step; for them, a finished run's last
  clustering is taken as the final one.
- ``reid/*`` and ``epoch/time`` at step e: after epoch e.
"""
import glob
import json
import os.path as osp
from typing import Dict, List

CLUSTER_KEYS = ('clusters', 'outliers', 'purity', 'nmi', 'ari',
                'time_extract', 'time_cluster')
METRIC_KEYS = ('mAP', 'rank1', 'rank5', 'rank10', 'mINP')


def scalar_files(work_dir: str) -> List[str]:
    """The scalars.json files of a work dir, oldest run first."""
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'work dir {work_dir} does not exist')
    return sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                     'scalars.json')))


def load_scalar_records(work_dir: str) -> List[dict]:
    """All scalar records of a work dir, in the order they were written."""
    records = []
    for path in scalar_files(work_dir):
        with open(path) as f:
            for line_no, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    records.append(json.loads(line))
                except ValueError as e:
                    raise ValueError(
                        f'{path}:{line_no} is not a JSON line: {e}') from e
    return records


def epoch_summary(work_dir: str) -> Dict[str, object]:
    """Per-epoch figures of a run.

    Returns:
        dict: ``initial`` (metrics before training or {}), ``epochs`` (a
        list of dicts, one per trained epoch, with the clustering it trained
        on, its wall time and the metrics after it, when logged), and
        ``final_cluster`` (the diagnostic clustering after training or {}).
        Later records override earlier ones of the same step (a resumed run
        repeats the steps it re-ran).
    """
    initial, clusters, metrics, times, final = {}, {}, {}, {}, {}
    new_format = False
    for rec in load_scalar_records(work_dir):
        step = int(rec.get('step', -1))
        for key, value in rec.items():
            if key.endswith('/format'):
                new_format = True
            elif key.startswith('final_cluster/'):
                final[key[len('final_cluster/'):]] = value
            elif key.startswith('val_init/reid/'):
                initial[key[len('val_init/reid/'):]] = value
            elif key.startswith('cluster/'):
                clusters.setdefault(step, {})[key[len('cluster/'):]] = value
            elif key.startswith('reid/'):
                metrics.setdefault(step, {})[key[len('reid/'):]] = value
            elif key == 'epoch/time':
                times[step] = value
    last = max([0, *times, *metrics])
    epochs = []
    for epoch in range(1, last + 1):
        row = dict(epoch=epoch)
        row.update({f'cluster_{k}': v
                    for k, v in clusters.get(epoch - 1, {}).items()})
        if epoch in times:
            row['time'] = times[epoch]
        row.update(metrics.get(epoch, {}))
        epochs.append(row)
    if not new_format and last > 0 and last in clusters:
        final = clusters[last]
    return dict(initial=initial, epochs=epochs, final_cluster=final)


def format_epoch_table(summary: Dict[str, object]) -> str:
    """A markdown table of :func:`epoch_summary`."""
    head = ('| epoch | clusters | outliers | ARI | NMI | mAP | rank-1 | '
            'time (s) |')
    lines = [head, '| ' + ' | '.join(['---'] * 8) + ' |']

    def fmt(value, spec):
        return '' if value is None else format(value, spec)

    init = summary['initial']
    if init:
        lines.append(f'| 0 (before) | | | | | {fmt(init.get("mAP"), ".1f")}'
                     f' | {fmt(init.get("rank1"), ".1f")} | |')
    for row in summary['epochs']:
        lines.append(
            f'| {row["epoch"]} | {fmt(row.get("cluster_clusters"), ".0f")} '
            f'| {fmt(row.get("cluster_outliers"), ".0f")} '
            f'| {fmt(row.get("cluster_ari"), ".3f")} '
            f'| {fmt(row.get("cluster_nmi"), ".3f")} '
            f'| {fmt(row.get("mAP"), ".1f")} | {fmt(row.get("rank1"), ".1f")}'
            f' | {fmt(row.get("time"), ".0f")} |')
    final = summary['final_cluster']
    if final:
        lines.append(
            f'| final clustering | {fmt(final.get("clusters"), ".0f")} '
            f'| {fmt(final.get("outliers"), ".0f")} '
            f'| {fmt(final.get("ari"), ".3f")} '
            f'| {fmt(final.get("nmi"), ".3f")} | | | |')
    return '\n'.join(lines)
