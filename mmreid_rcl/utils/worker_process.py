"""What the benchmarks that time each case in a fresh worker process share.

``bench_extraction.py`` and ``bench_training.py`` of ``tools/benchmarks``
run every model in a separate process (a clean allocator, no warm caches
from the previous model) and, unless told not to, once more with glibc
malloc keeping freed memory, to show what that setting is worth. The
parent re-runs its own script with ``--worker NAME --result FILE`` and
reads the JSON back.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

from .malloc import keep_freed_memory


def add_worker_options(parser: argparse.ArgumentParser, compare_help: str,
                       quick_help: str) -> None:
    """The options of a benchmark that runs its cases in worker processes:
    ``--malloc``, ``--no-malloc-compare``, ``--seed``, ``--quick``,
    ``--json`` and the hidden ``--worker/--result/--malloc-run``."""
    parser.add_argument(
        '--malloc',
        choices=['glibc', 'keep'],
        default='glibc',
        help="'keep': glibc malloc keeps freed memory for reuse "
        '(mallopt), see keep_freed_memory')
    parser.add_argument(
        '--no-malloc-compare', action='store_true', help=compare_help)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--quick', action='store_true', help=quick_help)
    parser.add_argument('--json', help='write the result rows here')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    parser.add_argument('--result', help=argparse.SUPPRESS)
    parser.add_argument(
        '--malloc-run', action='store_true', help=argparse.SUPPRESS)


def start_worker(args, script_name: str) -> None:
    """In a worker: apply ``--malloc keep`` or stop with a clear error."""
    if args.malloc == 'keep' and not keep_freed_memory():
        raise SystemExit(f'{script_name}: mallopt failed (--malloc keep '
                         'needs glibc)')


def without_json(argv: list) -> list:
    """``argv`` without ``--json PATH`` / ``--json=PATH`` (workers must not
    write the parent's table)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == '--json':
            skip = True
        elif not a.startswith('--json='):
            out.append(a)
    return out


def run_worker_process(script: str, argv, extra) -> dict:
    """Run ``script`` with ``argv + extra`` in a new Python process and
    return the JSON it wrote to ``--result``."""
    env = dict(os.environ)
    env.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    with tempfile.NamedTemporaryFile(suffix='.json', delete=False) as f:
        result_path = f.name
    cmd = [sys.executable, os.path.abspath(script)
           ] + list(argv) + list(extra) + ['--result', result_path]
    try:
        proc = subprocess.run(cmd, env=env)
        if proc.returncode != 0:
            raise SystemExit(f'{os.path.basename(script)}: the worker '
                             f'{extra} failed (exit {proc.returncode})')
        with open(result_path) as f:
            return json.load(f)
    finally:
        os.unlink(result_path)


def write_result(path: str, result: dict) -> None:
    """In a worker: hand ``result`` to the parent."""
    with open(path, 'w') as f:
        json.dump(result, f)


def print_rows(rows: list, json_path=None) -> None:
    """Print the rows (figure | comparison | target met) and, if asked,
    write them as JSON for ``run_all.py``."""
    for row in rows:
        met = {True: 'yes', False: 'no', None: ''}[row['met']]
        print(f'{row["figure"]}  |  {row["comparison"]}  |  '
              f'{row["target"]}  {met}')
    if json_path:
        with open(json_path, 'w') as f:
            json.dump(rows, f, indent=2)
