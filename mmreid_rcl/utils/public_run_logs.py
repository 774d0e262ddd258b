"""Reading a run of the public cluster-contrast code from its console log.

``tools/analysis/public_cluster_contrast_cpu.py`` runs the public
implementation and prints lines of its own, each starting with
``[yardstick]``:

- ``run start`` when a run (or a restarted one) begins; only the lines
  after the last such marker count, so that a log a restarted run
  appended to is read as one run;
- ``before training ...`` then an ``eval`` line: the untrained model;
- ``clusters N outliers M ARI a NMI n dbscan t s``: a clustering, made
  before the epoch that trains on it;
- ``trained epoch E in t s``: the end of epoch E (1-based);
- ``eval mAP m rank1 r1 rank5 r5`` (fractions): an evaluation; the one
  after ``trained epoch E`` is epoch E's, the one after ``test with the
  best model`` is the best checkpoint's.

:func:`public_run_summary` turns them into the summary
:func:`mmreid_rcl.utils.run_logs.epoch_summary` makes of this project's
runs (percent metrics, ``cluster_*`` keys per epoch), so that the two
implementations are tabled and drawn by the same code.
"""
import re
from typing import Dict

MARK = '[yardstick]'
_EVAL = re.compile(r'eval mAP ([\d.]+) rank1 ([\d.]+) rank5 ([\d.]+)')
_CLUSTER = re.compile(r'clusters (\d+) outliers (\d+) ARI ([-\d.]+) '
                      r'NMI ([-\d.]+)(?: dbscan ([\d.]+) s)?')
_TRAINED = re.compile(r'trained epoch (\d+)(?: in ([\d.]+) s)?')


def public_run_summary(log_text: str) -> Dict[str, object]:
    """The per-epoch figures of one public-code run, from its log.

    Args:
        log_text (str): the run's console output (``train.out``).

    Returns:
        dict: ``initial``, ``epochs`` and ``final_cluster`` as in
        :func:`~mmreid_rcl.utils.run_logs.epoch_summary` (``final_cluster``
        is empty: the public code does not cluster with its final model),
        plus ``best`` (the metrics of its best checkpoint's final test,
        when logged).

    Raises:
        ValueError: the text holds no ``[yardstick]`` line, or an
            evaluation or clustering line that cannot be read.
    """
    lines = [line.split(MARK, 1)[1].strip()
             for line in log_text.splitlines() if MARK in line]
    if not lines:
        raise ValueError(f'no {MARK} line in the log: not a run of '
                         'tools/analysis/public_cluster_contrast_cpu.py')
    starts = [i for i, line in enumerate(lines) if line == 'run start']
    if starts:
        lines = lines[starts[-1] + 1:]
    initial, best, epochs = {}, {}, []
    pending_cluster, target = None, None
    for line in lines:
        if line.startswith('before training'):
            target = initial
        elif line.startswith('test with the best model'):
            target = best
        elif line.startswith('clusters '):
            pending_cluster = _read_cluster(line)
        elif line.startswith('trained epoch'):
            match = _TRAINED.match(line)
            row = dict(epoch=int(match.group(1)))
            row.update(pending_cluster or {})
            if match.group(2) is not None:
                row['time'] = float(match.group(2))
            epochs.append(row)
            pending_cluster, target = None, row
        elif line.startswith('eval '):
            match = _EVAL.match(line)
            if match is None:
                raise ValueError(f'cannot read the evaluation line {line!r}')
            if target is not None:
                target.update(
                    mAP=100 * float(match.group(1)),
                    rank1=100 * float(match.group(2)),
                    rank5=100 * float(match.group(3)))
            target = None
    return dict(initial=initial, epochs=epochs, final_cluster={}, best=best)


def _read_cluster(line: str) -> Dict[str, float]:
    match = _CLUSTER.match(line)
    if match is None:
        raise ValueError(f'cannot read the clustering line {line!r}')
    row = dict(
        cluster_clusters=int(match.group(1)),
        cluster_outliers=int(match.group(2)),
        cluster_ari=float(match.group(3)),
        cluster_nmi=float(match.group(4)))
    if match.group(5) is not None:
        row['cluster_time_cluster'] = float(match.group(5))
    return row
