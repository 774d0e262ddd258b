"""Run an ablation protocol resumably and write its tables.

    python tools/run_ablation.py                          # ImageNet start
    python tools/run_ablation.py --protocol cuhk03_semi   # warm start
    python tools/run_ablation.py --protocol cuhk03_semi --report-only

Protocols (``mmreid_rcl/utils/ablation.py``):

- ``cuhk03_imagenet``: the RCL ablation with the CPU recipe (ImageNet
  MobileNetV2, 128x64, 12 epochs): baseline and full RCL over the main
  seeds, then the other variants over the other seeds.
- ``cuhk03_semi``: supervised training on the labelled half L of CUHK03's
  train identities, then each unsupervised variant on the unlabelled half
  U, warm-started from that checkpoint, over seeds.
- ``cuhk03_parity``: the cluster-contrast CPU recipe run by this project
  (``ours``) and by the public implementation (``public``, through
  ``tools/analysis/public_cluster_contrast_cpu.py``; give its checkout
  with ``--cc-root``), side by side over the main seeds::

      python tools/run_ablation.py --protocol cuhk03_parity \
          --main-seeds 0 1 2 3 --cc-root ../cluster-contrast-reid

  A public run cannot resume: an interrupted one starts again.

A finished run leaves its summary in ``docs/ablation/<protocol>/runs/``
(kept with the project, so finished runs survive a fresh checkout) and is
skipped; an interrupted one resumes from the latest checkpoint of its work
dir. ``docs/ablation/<protocol>/README.md`` (the table) and
``summary.json`` are rewritten after every run. ``--jobs N`` trains N runs
at once (a machine with many cores or a GPU), each with its share of the
threads.
"""
import argparse
import os
import os.path as osp
import sys
import time

from mmreid_rcl.engine.runner import resolve_last_checkpoint
from mmreid_rcl.utils.ablation import (PROTOCOLS, compare_runs, curve_runs,
                                       finish_run, rebuilt_run_file,
                                       run_command, run_file, start_run,
                                       train_command, write_outputs)
from mmreid_rcl.visualization import plot_protocol_curves

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--protocol', default='cuhk03_imagenet', choices=sorted(PROTOCOLS))
    parser.add_argument('--work-root', help='where the work dirs go')
    parser.add_argument(
        '--results-dir',
        help='one JSON summary per finished run (default: '
        'docs/ablation/<protocol>/runs)')
    parser.add_argument(
        '--out-dir',
        help='summary.json and README.md (default: docs/ablation/<protocol>)')
    parser.add_argument(
        '--main-seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--other-seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--only', nargs='+', help='run only these variants')
    parser.add_argument('--report-only', action='store_true')
    parser.add_argument(
        '--cc-root',
        help='a checkout of alibaba/cluster-contrast-reid, for the variants '
        'that run the public code (cuhk03_parity: public)')
    parser.add_argument(
        '--jobs', type=int, default=1, help='runs trained at once (1)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='extra key=value overrides for every run (e.g. another '
        'data_root)')
    args = parser.parse_args(argv)
    protocol = PROTOCOLS[args.protocol]
    names = {v.name for v in protocol.variants}
    if args.only and set(args.only) - names:
        unknown = sorted(set(args.only) - names)
        parser.error(f'--only: unknown variants {unknown} of '
                     f'{args.protocol}; known: {sorted(names)}')
    if args.jobs < 1:
        parser.error('--jobs must be >= 1')
    plan = protocol.plan(args.main_seeds, args.other_seeds, args.only)
    if not args.report_only and not args.cc_root and any(
            protocol.variant(name).runner == 'public' for name, _ in plan):
        parser.error('--cc-root is missing: the plan runs the public '
                     'cluster-contrast code (give a checkout of '
                     'alibaba/cluster-contrast-reid, or leave its variants '
                     'out with --only)')
    return args


def main(argv=None):
    args = parse_args(argv)
    protocol = PROTOCOLS[args.protocol]
    out_dir = args.out_dir or osp.join(REPO, protocol.out_dir)
    results = args.results_dir or osp.join(out_dir, 'runs')
    work_root = args.work_root or osp.join(REPO, protocol.default_work_root)
    command = ' '.join(['python tools/run_ablation.py', '--protocol',
                        protocol.name])
    if not args.report_only:
        other_data = any(
            o.startswith('data_root=') for o in args.cfg_options)
        for path, how in protocol.needs:
            if other_data and path.startswith('data/'):
                continue
            if not osp.exists(osp.join(REPO, path)):
                raise SystemExit(f'{path} is missing: {how}')
        options = list(args.cfg_options)
        if protocol.pretrain is not None:
            options.append(f'{protocol.pretrain_option}=' +
                           run_stage(protocol.pretrain, 0, work_root, results,
                                     args.cfg_options, 1))
        plan = protocol.plan(args.main_seeds, args.other_seeds, args.only)
        run_all(protocol, plan, work_root, results, options, args.jobs,
                lambda: report(protocol, results, out_dir, command),
                args.cc_root)
    print(report(protocol, results, out_dir, command))


def report(protocol, results, out_dir, command):
    """Write the protocol's table, summary.json and, where the protocol
    names variants to draw, curves.png; returns the table."""
    text = write_outputs(protocol, results, out_dir, command)
    runs = curve_runs(protocol, results)
    if runs:
        out = plot_protocol_curves(runs, osp.join(out_dir, 'curves.png'),
                                   title=protocol.title)
        with open(osp.join(out_dir, 'README.md'), 'a') as f:
            f.write(f'\nPer-epoch curves of {", ".join(runs)} (thin: one '
                    'seed; thick: the mean over seeds):\n\n'
                    '![per-epoch curves](curves.png)\n')
        text += f'\n\nPer-epoch curves: {out}'
    return text


def _env(jobs):
    env = dict(os.environ)
    if jobs > 1:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def run_stage(variant, seed, work_root, results, options, jobs):
    """Run (or find) one run and return its last checkpoint."""
    work_dir = osp.join(work_root, f'{variant.name}_seed{seed}')
    done = run_file(results, variant.name, seed)
    if not osp.isfile(done):
        cmd = train_command(REPO, variant.config, work_dir, seed, options)
        print(f'[{variant.name} seed {seed}] {" ".join(cmd)}', flush=True)
        proc = start_run(cmd, work_dir, REPO, _env(jobs))
        _wait(proc, variant, seed, work_dir, done)
    else:
        print(f'[{variant.name} seed {seed}] done already ({work_dir})')
        if resolve_last_checkpoint(work_dir) is None:
            # A fresh checkout keeps the run's summary but not its work
            # dir: train the stage again for its checkpoint, and keep the
            # new figures beside the recorded ones (a reproducibility
            # record) rather than over them.
            rebuilt = rebuilt_run_file(results, variant.name, seed)
            print(f'[{variant.name} seed {seed}] {work_dir} holds no '
                  f'checkpoint: training it again; figures go to {rebuilt}',
                  flush=True)
            cmd = train_command(REPO, variant.config, work_dir, seed, options)
            proc = start_run(cmd, work_dir, REPO, _env(jobs))
            _wait(proc, variant, seed, work_dir, rebuilt)
            print(compare_runs(done, rebuilt), flush=True)
    checkpoint = resolve_last_checkpoint(work_dir)
    if checkpoint is None or not osp.isfile(checkpoint):
        raise SystemExit(f'[{variant.name} seed {seed}] finished, but '
                         f'{work_dir} holds no last checkpoint to start the '
                         'next stage from')
    return checkpoint


def _wait(proc, variant, seed, work_dir, done):
    code = proc.wait()
    proc.log_file.close()
    if code != 0:
        raise SystemExit(f'[{variant.name} seed {seed}] training failed '
                         f'(exit {code}); see {work_dir}/train.out')
    summary = finish_run(work_dir, done, time.time() - proc.started,
                         variant)
    print(f'[{variant.name} seed {seed}] finished in '
          f'{summary["wall_time_s"]:.0f} s', flush=True)


def run_all(protocol, plan, work_root, results, options, jobs, report,
            cc_root=None):
    """Train the planned runs, ``jobs`` at a time, in plan order."""
    pending = list(plan)
    running = []
    try:
        _run_queue(protocol, pending, running, work_root, results, options,
                   jobs, report, cc_root)
    finally:
        for run in running:  # a failed run stops the others
            run[0].terminate()


def _run_queue(protocol, pending, running, work_root, results, options, jobs,
               report, cc_root):
    while pending or running:
        while pending and len(running) < jobs:
            name, seed = pending.pop(0)
            work_dir = osp.join(work_root, f'{name}_seed{seed}')
            done = run_file(results, name, seed)
            if osp.isfile(done):
                print(f'[{name} seed {seed}] done already ({work_dir})')
                continue
            variant = protocol.variant(name)
            cmd = run_command(REPO, variant, work_dir, seed, options, cc_root)
            print(f'[{name} seed {seed}] {" ".join(cmd)}', flush=True)
            running.append((start_run(cmd, work_dir, REPO, _env(jobs)),
                            variant, seed, work_dir, done))
        if not running:
            break
        while all(run[0].poll() is None for run in running):
            time.sleep(2)
        for run in [r for r in running if r[0].poll() is not None]:
            running.remove(run)
            _wait(*run)
            report()


if __name__ == '__main__':
    sys.exit(main())
