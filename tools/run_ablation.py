"""Run the RCL ablation on CUHK03 with the CPU recipe and write its table.

    python tools/run_ablation.py                 # everything, resumable
    python tools/run_ablation.py --report-only   # the table from what ran

Runs, in an order that gives a usable table early: baseline and full RCL
with seeds 0, 1, 2 (their test mAP moves by 1-2 points from run to run),
then +CSA, +HPS, the hard update, full RCL with the HPS floor at 1/n
(rcl_floor1), the central update (the most typical in-batch sample
moves its prototype), baseline / full RCL with 8-member sets
(baseline_k8, rcl_k8) and full RCL with 4 epochs of the mean update before
HPS (rcl_warmup4), with seed 0. A finished run leaves its
summary in ``--results-dir`` (kept with the project, so finished runs
survive a fresh checkout) and is skipped; an interrupted one is resumed
from the latest checkpoint of its work dir. The table (mean and spread
over seeds of the final mAP / rank-1 / rank-5, and the final clustering's
ARI / NMI on the train split) goes to ``--out`` and the screen.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mmreid_rcl.utils.run_logs import epoch_summary  # noqa: E402

ABLATIONS = {
    'baseline': ('mean init + mean update (cluster contrast)',
                 'configs/rcl/ablation/baseline_mobilenetv2_cpu_cuhk03.py'),
    'csa': ('+CSA (attention init, SAA-trained)',
            'configs/rcl/ablation/csa_mobilenetv2_cpu_cuhk03.py'),
    'hps': ('+HPS (hard positive update, SAA-trained)',
            'configs/rcl/ablation/hps_mobilenetv2_cpu_cuhk03.py'),
    'hard': ('hard update (least similar sample)',
             'configs/rcl/ablation/hard_mobilenetv2_cpu_cuhk03.py'),
    'rcl': ('full RCL (CSA + SAA + HPS)',
            'configs/rcl/ablation/rcl_mobilenetv2_cpu_cuhk03.py'),
    'rcl_floor1':
    ('full RCL, HPS floor 1/n',
     'configs/rcl/ablation/rcl_floor1_mobilenetv2_cpu_cuhk03.py'),
    'central': ('central update (most typical sample)',
                'configs/rcl/ablation/central_mobilenetv2_cpu_cuhk03.py'),
    'baseline_k8':
    ('mean init + mean update, P x K = 8 x 8',
     'configs/rcl/ablation/baseline_k8_mobilenetv2_cpu_cuhk03.py'),
    'rcl_k8': ('full RCL, P x K = 8 x 8',
               'configs/rcl/ablation/rcl_k8_mobilenetv2_cpu_cuhk03.py'),
    'rcl_warmup4':
    ('full RCL, mean update for 4 epochs, then HPS',
     'configs/rcl/ablation/rcl_warmup4_mobilenetv2_cpu_cuhk03.py'),
}


MAIN = ('baseline', 'rcl')
OTHERS = ('csa', 'hps', 'hard', 'rcl_floor1', 'central', 'baseline_k8',
          'rcl_k8', 'rcl_warmup4')


def plan(main_seeds, other_seeds, only):
    """Baseline and full RCL over their seeds first (the table's mean and
    spread), then the other variants over theirs."""
    runs = [(name, seed) for seed in sorted(main_seeds) for name in MAIN]
    runs += [(name, seed) for seed in sorted(other_seeds)
             for name in OTHERS]
    return [(name, seed) for name, seed in runs
            if not only or name in only]


def run_one(name, seed, work_root, results_dir, extra_options):
    work_dir = osp.join(work_root, f'{name}_seed{seed}')
    done = osp.join(results_dir, f'{name}_seed{seed}.json')
    if osp.isfile(done):
        print(f'[{name} seed {seed}] done already ({work_dir})')
        return
    os.makedirs(work_dir, exist_ok=True)
    cmd = [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'),
        osp.join(REPO, ABLATIONS[name][1]), '--work-dir', work_dir,
        '--cfg-options', f'randomness.seed={seed}', *extra_options
    ]
    if glob.glob(osp.join(work_dir, '*.pth')):
        cmd.insert(3, '--resume')
    print(f'[{name} seed {seed}] {" ".join(cmd)}', flush=True)
    start = time.time()
    with open(osp.join(work_dir, 'train.out'), 'a') as log:
        code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT,
                               cwd=REPO)
    if code != 0:
        raise SystemExit(f'[{name} seed {seed}] training failed (exit '
                         f'{code}); see {work_dir}/train.out')
    summary = epoch_summary(work_dir)
    summary['wall_time_s'] = time.time() - start
    os.makedirs(results_dir, exist_ok=True)
    with open(done, 'w') as f:
        json.dump(summary, f, indent=1)
    print(f'[{name} seed {seed}] finished in {summary["wall_time_s"]:.0f} s')


def _final(summary):
    last = summary['epochs'][-1] if summary['epochs'] else {}
    final = summary.get('final_cluster', {})
    return dict(
        mAP=last.get('mAP'),
        rank1=last.get('rank1'),
        rank5=last.get('rank5'),
        ari=final.get('ari'),
        nmi=final.get('nmi'),
        initial_mAP=summary['initial'].get('mAP'))


def _fmt(value, spec):
    return 'n/a' if value is None else format(value, spec)


def report(results_dir):
    rows = ['| variant | seeds | mAP | rank-1 | rank-5 | final ARI | '
            'final NMI |', '| --- | --- | --- | --- | --- | --- | --- |']
    per_seed = []
    for name, (desc, _) in ABLATIONS.items():
        finals = []
        for done in sorted(
                glob.glob(osp.join(results_dir, f'{name}_seed*.json'))):
            with open(done) as f:
                res = _final(json.load(f))
            seed = osp.splitext(osp.basename(done))[0].split('seed')[-1]
            finals.append(res)
            per_seed.append(
                f'| {name} | {seed} | {_fmt(res["mAP"], ".2f")} | '
                f'{_fmt(res["rank1"], ".2f")} | {_fmt(res["rank5"], ".2f")} '
                f'| {_fmt(res["ari"], ".3f")} | {_fmt(res["nmi"], ".3f")} |')
        if not finals:
            continue

        def cell(key, spec):
            vals = np.array([r[key] for r in finals if r[key] is not None],
                            dtype=float)
            if len(vals) == 0:
                return 'n/a'
            if len(vals) == 1:
                return format(vals[0], spec)
            return (f'{format(vals.mean(), spec)} ± '
                    f'{format(vals.std(ddof=1), spec)}')

        rows.append(f'| {desc} | {len(finals)} | {cell("mAP", ".2f")} | '
                    f'{cell("rank1", ".2f")} | {cell("rank5", ".2f")} | '
                    f'{cell("ari", ".3f")} | {cell("nmi", ".3f")} |')
    text = '\n'.join(rows)
    if per_seed:
        text += ('\n\nPer run:\n\n| variant | seed | mAP | rank-1 | rank-5 '
                 '| final ARI | final NMI |\n| --- | --- | --- | --- | --- | '
                 '--- | --- |\n' + '\n'.join(per_seed))
    text += ('\n\n(mean ± sample standard deviation over seeds; metrics '
             'after the last epoch; ARI/NMI of the clustering of the train '
             'split by the final model.)')
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-root', default='work_dirs/ablation_cuhk03')
    parser.add_argument('--out', default='docs/ablation_cuhk03.md')
    parser.add_argument('--results-dir', default='docs/ablation_cuhk03_runs',
                        help='one JSON summary per finished run')
    parser.add_argument('--main-seeds', type=int, nargs='+',
                        default=[0, 1, 2])
    parser.add_argument('--other-seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--only', nargs='+', choices=sorted(ABLATIONS),
                        help='run only these variants')
    parser.add_argument('--report-only', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='extra key=value overrides for every run')
    args = parser.parse_args(argv)
    ckpt = osp.join(REPO, 'checkpoints', 'mobilenetv2_imagenet_mmreid.pth')
    if not args.report_only:
        if not osp.isfile(ckpt):
            raise SystemExit(
                f'{ckpt} is missing: convert the ImageNet weights first '
                '(python tools/model_converters/mobilenetv2_to_mmreid.py '
                '../shared/weights/mobilenetv2_imagenet.pt '
                'checkpoints/mobilenetv2_imagenet_mmreid.pth)')
        if not osp.isdir(osp.join(REPO, 'data', 'cuhk03_labeled')):
            raise SystemExit(
                'data/cuhk03_labeled is missing: mkdir -p data && ln -s '
                '../../shared/data/cuhk03_labeled data/cuhk03_labeled')
        for name, seed in plan(args.main_seeds, args.other_seeds,
                               args.only):
            run_one(name, seed, args.work_root, args.results_dir,
                    args.cfg_options)
            write_report(args.results_dir, args.out)
    text = write_report(args.results_dir, args.out)
    print(text)


def write_report(results_dir, out):
    text = report(results_dir)
    os.makedirs(osp.dirname(out) or '.', exist_ok=True)
    with open(out, 'w') as f:
        f.write('# RCL ablation on CUHK03 (CPU recipe)\n\n'
                'Written by `python tools/run_ablation.py`.\n\n' + text +
                '\n')
    return text


if __name__ == '__main__':
    main()
