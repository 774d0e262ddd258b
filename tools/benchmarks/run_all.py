"""Run every benchmark and print one table of the figures.

What ``make benchmark`` runs. Each stage's script runs in a subprocess with
``--json`` (its own progress goes to stderr) and returns rows ``{stage,
figure, comparison, target, met}``; they are printed as one markdown table,
with a header line naming the date, the machine (CPU model, cores, torch
threads) and its load average before the run, and written to ``--out``.

Stages (scripts in ``tools/benchmarks/``):

- re-clustering at 12,936 / 32,621 / 100,000 samples of the synthetic
  and isotropic families, and of real features in views when
  ``work_dirs/features/views_32621.npz`` exists (the sizes it holds; made
  by ``make_view_features.py``), and at 100,000
  under memory limits of 3 GB (completes) and 2.2 GB (refused before
  clustering, with the estimate) (``bench_clustering.py``),
- feature extraction: model throughput by option and data loading
  (``bench_extraction.py``),
- training step throughput, RCL's extra cost, fraction of the CPU's peak
  (``bench_training.py``),
- evaluation at Market-1501 scale and re-ranking (``bench_evaluation.py``).

The full run is meant to finish within 20 minutes on a quiet 2-core
machine (the time of every stage is printed under the table); other jobs
on the machine lengthen it and lower the figures, hence the load average
in the header. ``--quick`` runs every stage at toy sizes in a few
minutes: a smoke test of the whole chain, not figures to quote.

Examples::

    python tools/benchmarks/run_all.py                 # docs/benchmarks.md
    python tools/benchmarks/run_all.py --quick --out /tmp/bench.md
    python tools/benchmarks/run_all.py --stages training evaluation
"""
import argparse
import datetime
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
ROW_KEYS = ('stage', 'figure', 'comparison', 'target', 'met')

# Real features in views (tools/benchmarks/make_view_features.py): a
# family of the clustering stage when the file is there.
REAL_FEATURES = osp.join(REPO, 'work_dirs', 'features', 'views_32621.npz')


def clustering_families() -> list:
    """``--families`` of the clustering stage: the synthetic and isotropic
    ones, and the real features when they were made."""
    families = ['synthetic', 'isotropic']
    if osp.isfile(REAL_FEATURES):
        families.append(REAL_FEATURES)
    else:
        print(f'no real features at {REAL_FEATURES}: the clustering rows '
              'cover the synthetic and isotropic families (see '
              'make_view_features.py)', file=sys.stderr)
    return ['--families'] + families


# name: (script, arguments of the full run, arguments of --quick)
STAGES = {
    'clustering': ('bench_clustering.py', ['--memory-limit-gb', '3', '2.2'],
                   ['--num', '2000', '--memory-limit-gb', '3', '1']),
    'extraction': ('bench_extraction.py', [], ['--quick']),
    'training': ('bench_training.py', [], ['--quick']),
    'evaluation': ('bench_evaluation.py', [], ['--quick']),
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--quick', action='store_true',
        help='every stage at toy sizes (a smoke test of the chain)')
    parser.add_argument(
        '--stages', nargs='+', choices=list(STAGES), default=list(STAGES),
        help='stages to run, in this order')
    parser.add_argument(
        '--out', default=osp.join(REPO, 'docs', 'benchmarks.md'),
        help='markdown file the table is written to')
    parser.add_argument(
        '--keep-json', help='also keep each stage\'s JSON rows here')
    return parser.parse_args(argv)


def machine() -> dict:
    """CPU model, cores and torch's thread count (in a subprocess, so that
    this process never starts an OpenMP pool)."""
    from mmreid_rcl.utils.machine import cpu_description
    cpu = cpu_description()
    cpu = f"{cpu['cpu']} ({cpu['vector']})"
    threads = subprocess.run(
        [sys.executable, '-c', 'import torch; print(torch.get_num_threads(),'
         ' torch.__version__)'],
        capture_output=True, text=True, env=stage_env())
    parts = threads.stdout.split()
    return dict(
        cpu=cpu,
        cores=os.cpu_count(),
        torch_threads=int(parts[0]) if parts else None,
        torch=parts[1] if len(parts) > 1 else '?')


def stage_env() -> dict:
    env = dict(os.environ)
    env.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    return env


def _is_row(item) -> bool:
    return isinstance(item, dict) and all(k in item for k in ROW_KEYS)


def clustering_row(raw: dict) -> dict:
    """A row from a raw result of an older ``bench_clustering.py`` (one
    dict per size, without the row keys)."""
    figure = f'{raw["time_total"]:.1f} s wall'
    if 'cpu_total' in raw:
        figure += f' ({raw["cpu_total"]:.1f} s CPU)'
    parts = [
        f'kNN {raw.get("time_knn", float("nan")):.1f} s, Jaccard '
        f'{raw.get("time_jaccard", float("nan")):.1f} s, DBSCAN '
        f'{raw.get("time_dbscan", float("nan")):.1f} s'
    ]
    if 'peak_over_start_mb' in raw:
        parts.append(f'memory +{raw["peak_over_start_mb"]:.0f} MB')
    if 'num_clusters' in raw:
        parts.append(f'{raw["num_clusters"]} clusters')
    if 'ref_time_total' in raw:
        parts.append(f'dense reference {raw["ref_time_total"]:.1f} s')
    return dict(
        stage=f're-clustering N={raw["num"]:,} (knn {raw.get("knn", "?")})',
        figure=figure,
        comparison='; '.join(parts),
        target='',
        met=None)


def as_rows(name: str, data) -> list:
    """The stage's JSON as table rows; other shapes are adapted."""
    items = data if isinstance(data, list) else [data]
    rows = []
    for item in items:
        if _is_row(item):
            rows.append({k: item[k] for k in ROW_KEYS})
        elif isinstance(item, dict) and 'num' in item and \
                'time_total' in item:
            rows.append(clustering_row(item))
        else:
            rows.append(
                dict(
                    stage=name,
                    figure=json.dumps(item)[:200],
                    comparison='(not in the row shape)',
                    target='',
                    met=None))
    return rows


def run_stage(name: str, quick: bool, keep_json=None) -> dict:
    """Run one stage's script; returns its rows, exit code and time."""
    script, full, small = STAGES[name]
    fd, path = tempfile.mkstemp(suffix=f'_{name}.json')
    os.close(fd)
    cmd = [sys.executable, osp.join(HERE, script)] + (
        small if quick else full) + ['--json', path]
    if script == 'bench_clustering.py':
        cmd[-2:-2] = clustering_families()
    print(f'== {name}: {" ".join(cmd[1:-2])}', file=sys.stderr, flush=True)
    start = time.perf_counter()
    # The stage's own report goes to stderr, keeping stdout for the table.
    try:
        sink = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a captured stream
        sink = None
    if sink is None:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=stage_env())
        sys.stderr.write(proc.stdout + proc.stderr)
    else:
        proc = subprocess.run(cmd, stdout=sink, env=stage_env())
    elapsed = time.perf_counter() - start
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        data = None
    finally:
        if keep_json and osp.isfile(path):
            os.makedirs(keep_json, exist_ok=True)
            os.replace(path, osp.join(keep_json, f'{name}.json'))
        elif osp.isfile(path):
            os.unlink(path)
    if proc.returncode != 0 or data is None:
        rows = [
            dict(
                stage=name,
                figure=f'{script} failed (exit code {proc.returncode})',
                comparison=' '.join(cmd[1:]),
                target='runs',
                met=False)
        ]
    else:
        rows = as_rows(name, data)
    return dict(
        name=name, rows=rows, returncode=proc.returncode, seconds=elapsed)


def _cell(value) -> str:
    return str(value).replace('|', '\\|').replace('\n', ' ')


def format_table(rows: list) -> str:
    lines = [
        '| stage | figure | comparison / target | met |',
        '| --- | --- | --- | --- |',
    ]
    for row in rows:
        comparison = row['comparison'] or ''
        if row['target']:
            comparison = (f'{comparison}; target {row["target"]}'
                          if comparison else f'target {row["target"]}')
        met = {True: 'yes', False: '**no**'}.get(row['met'], '')
        lines.append(f'| {_cell(row["stage"])} | {_cell(row["figure"])} | '
                     f'{_cell(comparison)} | {met} |')
    return '\n'.join(lines)


def header(info: dict, load: tuple, quick: bool) -> str:
    date = datetime.datetime.now().strftime('%Y-%m-%d %H:%M')
    text = (f'{date}, {info["cpu"]}, {info["cores"]} cores, torch '
            f'{info["torch"]} with {info["torch_threads"]} threads, load '
            f'average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / '
            '15 min) before the run')
    if quick:
        text += '; QUICK run (toy sizes, not figures to quote)'
    return text


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    load_before = os.getloadavg()
    info = machine()
    head = header(info, load_before, args.quick)
    print(head, file=sys.stderr, flush=True)
    start = time.perf_counter()
    results = [
        run_stage(name, args.quick, args.keep_json) for name in args.stages
    ]
    total = time.perf_counter() - start
    rows = [row for r in results for row in r['rows']]
    load_after = os.getloadavg()
    times = ', '.join(f'{r["name"]} {r["seconds"] / 60:.1f} min'
                      for r in results)
    command = ' '.join(['python tools/benchmarks/run_all.py'] + argv)
    footer = (f'Stage times: {times}; total {total / 60:.1f} min. Load '
              f'average after the run {load_after[0]:.2f}. Command: '
              f'`{command}`.')
    table = format_table(rows)
    print(head)
    print()
    print(table)
    print()
    print(footer)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write('# Benchmarks\n\n'
                    'Written by `tools/benchmarks/run_all.py` (`make '
                    'benchmark`) from the rows of `bench_clustering.py` '
                    '(re-clustering), `bench_extraction.py` (feature '
                    'extraction), `bench_training.py` (training, RCL extra '
                    'cost, peak fraction) and `bench_evaluation.py` '
                    '(evaluation); their docstrings say what is '
                    'measured.\n\n'
                    f'{head}\n\n{table}\n\n{footer}\n')
        print(f'written to {args.out}', file=sys.stderr)
    return 1 if any(r['returncode'] for r in results) else 0


if __name__ == '__main__':
    sys.exit(main())
