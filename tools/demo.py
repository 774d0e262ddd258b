"""Train cluster contrast from scratch on synthetic data and report.

    python tools/demo.py             # the full demo (``make demo``)
    python tools/demo.py --quick     # a tiny run, a few seconds
    python tools/demo.py --epochs 4 --work-dir work_dirs/demo_short

The synthetic data set is generated under the data root when it is missing,
a randomly initialised model is trained without labels with
``configs/demo/cluster_contrast_demo_synthetic.py`` and the retrieval
metrics before and after training are printed with the clustering of every
epoch. A work dir left by an earlier run is moved aside (or, with
``--overwrite``, deleted).
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import sys
import time
from typing import Dict, List, Optional

from mmengine.config import Config

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(REPO_ROOT, 'configs', 'demo')
DEMO_CONFIG = osp.join(CONFIG_DIR, 'cluster_contrast_demo_synthetic.py')
QUICK_CONFIG = osp.join(CONFIG_DIR,
                        'cluster_contrast_demo_synthetic_quick.py')
DEFAULT_WORK_DIR = osp.join('work_dirs', 'demo')
LOADERS = ('train_dataloader', 'cluster_dataloader', 'val_dataloader',
           'test_dataloader')
METRICS = (('mAP', 'reid/mAP'), ('rank-1', 'reid/rank1'),
           ('rank-5', 'reid/rank5'))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train cluster contrast from random init on the '
        'synthetic re-ID data and compare retrieval before and after')
    parser.add_argument(
        '--epochs', type=int, help='training epochs (default: the config)')
    parser.add_argument(
        '--work-dir',
        help='where logs and the checkpoint go (default: work_dirs/demo, '
        'or work_dirs/demo_quick with --quick)')
    parser.add_argument(
        '--data-root',
        help='folder of the synthetic data, generated when missing '
        '(default: the config\'s, under the project)')
    parser.add_argument(
        '--quick',
        action='store_true',
        help='a tiny run (12 identities, one short epoch) to check the '
        'set-up')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='delete an earlier run in the work dir instead of moving it '
        'aside')
    parser.add_argument(
        '--config', help='another demo config (default: the demo recipe)')
    parser.add_argument(
        '--seed',
        type=int,
        help='random seed of the run (default: the config\'s)')
    parser.add_argument(
        '--deterministic',
        action='store_true',
        help='deterministic algorithms only: two runs with one seed then '
        'give the same pseudo labels and metrics')
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error('--epochs must be >= 1')
    if args.seed is not None and args.seed < 0:
        parser.error('--seed must be >= 0')
    return args


def in_project(path: str) -> str:
    """A path of the config, taken relative to the project root."""
    return path if osp.isabs(path) else osp.join(REPO_ROOT, path)


def build_config(args: argparse.Namespace) -> Config:
    """The demo config with the command line applied."""
    config = args.config or (QUICK_CONFIG if args.quick else DEMO_CONFIG)
    cfg = Config.fromfile(config)
    data_root = (
        osp.abspath(args.data_root)
        if args.data_root else in_project(cfg.data_root))
    for key in LOADERS:
        if cfg.get(key) is not None:
            cfg[key].dataset.data_root = data_root
    if args.epochs is not None:
        cfg.train_cfg.max_epochs = args.epochs
    if args.seed is not None:
        cfg.randomness.seed = args.seed
    if args.deterministic:
        cfg.randomness.deterministic = True
    default = DEFAULT_WORK_DIR + ('_quick' if args.quick else '')
    cfg.work_dir = osp.abspath(args.work_dir or in_project(default))
    cfg.data_root = data_root
    return cfg


def move_aside(work_dir: str, overwrite: bool) -> Optional[str]:
    """Clear ``work_dir`` of an earlier run.

    Returns:
        str | None: Where the earlier run was moved, None when there was
        none or it was deleted.
    """
    if not osp.exists(work_dir):
        return None
    if not osp.isdir(work_dir):
        raise SystemExit(f'{work_dir} exists and is not a folder')
    if not os.listdir(work_dir):
        return None
    if overwrite:
        shutil.rmtree(work_dir)
        print(f'Deleted the earlier run in {work_dir} (--overwrite).')
        return None
    stamp = time.strftime('%Y%m%d_%H%M%S',
                          time.localtime(osp.getmtime(work_dir)))
    base = f'{work_dir.rstrip(os.sep)}_{stamp}'
    target, n = base, 1
    while osp.exists(target):
        target, n = f'{base}_{n}', n + 1
    os.rename(work_dir, target)
    print(f'Moved the earlier run in {work_dir} aside to {target} '
          '(pass --overwrite to delete it instead).')
    return target


def prepare_data(cfg: Config) -> Dict:
    """Generate the synthetic data set when missing; returns its meta."""
    from mmreid_rcl.datasets.synthetic import generate_synthetic_reid
    gen_cfg = dict(cfg.train_dataloader.dataset.get('generator_cfg') or {})
    gen_cfg.pop('progress', None)
    try:
        return generate_synthetic_reid(
            cfg.data_root, progress=True, **gen_cfg)
    except FileExistsError as exc:
        raise SystemExit(f'error: {exc}. Choose another --data-root.')


def read_scalars(log_dir: str) -> List[Dict]:
    """The records of the run's json scalar log, in order."""
    paths = glob.glob(osp.join(log_dir, 'vis_data', 'scalars.json'))
    records = []
    for path in paths:
        with open(path) as f:
            records.extend(json.loads(line) for line in f if line.strip())
    return records


def collect(records: List[Dict]) -> Dict:
    """Metrics before training, after each evaluation, and clusterings.

    Returns:
        dict: ``before`` (metrics or None), ``evals`` (list of (epoch,
        metrics)), ``clusters`` (dict: epoch -> record of its first
        training log line, which holds the clustering diagnostics).
    """
    before, evals, clusters = None, [], {}
    for rec in records:
        if 'val_init/reid/mAP' in rec:
            before = {
                k[len('val_init/'):]: v
                for k, v in rec.items() if k.startswith('val_init/')
            }
        elif 'reid/mAP' in rec:
            if rec.get('step', 0) == 0 and before is None:
                before = rec  # logged as a validation of epoch 0
            else:
                evals.append((int(rec['step']), rec))
        elif 'clusters' in rec and 'epoch' in rec:
            clusters.setdefault(int(rec['epoch']), rec)
    return dict(before=before, evals=evals, clusters=clusters)


def _fmt_time(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f'{minutes} min {seconds:02d} s' if minutes else f'{seconds} s'


def format_summary(found: Dict, meta: Dict, times: Dict,
                   paths: Dict) -> str:
    """The text printed at the end of the demo."""
    counts = meta['counts']
    lines = [
        '', '=' * 64,
        'Cluster contrast from random init on synthetic re-ID data',
        f"train: {counts['train']['images']} images of "
        f"{counts['train']['ids']} ids (labels unused); test: "
        f"{counts['query']['images']} queries, "
        f"{counts['gallery']['images']} gallery images", ''
    ]
    head = f"{'':<22}" + ''.join(f'{name:>9}' for name, _ in METRICS)
    lines.append(head)
    rows = []
    if found['before'] is not None:
        rows.append(('before training', found['before']))
    if found['evals']:
        epoch, after = found['evals'][-1]
        rows.append((f'after {epoch} epochs', after))
    for label, metrics in rows:
        lines.append(f'{label:<22}' + ''.join(
            f'{metrics[key]:>9.1f}' for _, key in METRICS))
    if len(rows) == 2:
        lines.append(f"{'change':<22}" + ''.join(
            f'{rows[1][1][key] - rows[0][1][key]:>+9.1f}'
            for _, key in METRICS))
    lines += ['', 'epoch  clusters  outliers  purity    ARI    mAP']
    evals = dict(found['evals'])
    for epoch in sorted(found['clusters']):
        rec = found['clusters'][epoch]
        m_ap = f"{evals[epoch]['reid/mAP']:>7.1f}" if epoch in evals else ''
        lines.append(f"{epoch:>5}  {int(rec['clusters']):>8}  "
                     f"{int(rec['outliers']):>8}  "
                     f"{rec.get('purity', float('nan')):>6.3f}  "
                     f"{rec.get('ari', float('nan')):>6.3f}{m_ap}")
    lines += [
        '', f"wall time: {_fmt_time(times['total'])} (data "
        f"{_fmt_time(times['data'])}, training and evaluation "
        f"{_fmt_time(times['train'])})",
        f"checkpoint: {paths['checkpoint'] or '(none saved)'}",
        f"log:        {paths['log']}",
        f"json log:   {paths['scalars']}"
    ]
    if paths.get('moved'):
        lines.append(f"earlier run moved to {paths['moved']}")
    lines.append('=' * 64)
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    from mmengine.runner import Runner

    from mmreid_rcl.engine.runner import resolve_last_checkpoint
    from mmreid_rcl.utils import register_all_modules
    from mmreid_rcl.utils.malloc import keep_freed_memory

    # Large activations reuse freed memory instead of fresh page-faulted
    # maps (see mmreid_rcl/utils/malloc.py).
    keep_freed_memory()

    cfg = build_config(args)
    moved = move_aside(cfg.work_dir, args.overwrite)
    print(f'Synthetic data under {cfg.data_root} (generated if missing)')
    meta = prepare_data(cfg)
    t_data = time.perf_counter() - start

    register_all_modules()
    runner = Runner.from_cfg(cfg)
    runner.train()
    t_end = time.perf_counter()

    found = collect(read_scalars(runner.log_dir))
    if found['before'] is None or not found['evals']:
        print('error: the json log holds no evaluation before and after '
              f'training (is EvaluateBeforeTrainHook on?): {runner.log_dir}',
              file=sys.stderr)
        return 1
    checkpoint = resolve_last_checkpoint(cfg.work_dir)
    paths = dict(
        checkpoint=checkpoint,
        log=osp.join(runner.log_dir, f'{runner.timestamp}.log'),
        scalars=osp.join(runner.log_dir, 'vis_data', 'scalars.json'),
        moved=moved)
    times = dict(total=t_end - start, data=t_data, train=t_end - start -
                 t_data)
    print(format_summary(found, meta, times, paths))
    return 0


if __name__ == '__main__':
    sys.exit(main())
