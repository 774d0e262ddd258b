"""Train a re-ID model from a config.

    python tools/train.py configs/rcl_r50_market.py
    tools/dist_train.sh configs/rcl_r50_market.py 2
"""
import os

# OpenMP threads that spin while waiting make CPU training several times
# slower whenever the cores are shared (data-loader workers, other jobs):
# measured here 4-5 s against 0.9 s a MobileNetV2 step. Sleep instead,
# unless the user chose otherwise. Must be set before torch is imported.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import argparse
import glob
import os.path as osp
import sys

from mmengine.config import Config
from mmengine.dist import barrier, is_main_process
from mmengine.runner import Runner

from mmreid_rcl.engine.runner import (find_resume_checkpoint,
                                      move_work_dir_aside)
from mmreid_rcl.utils.cli import add_cfg_options
from mmreid_rcl.utils.config_utils import fit_optim_wrapper_to_device
from mmreid_rcl.utils.malloc import keep_freed_memory
from mmreid_rcl.utils.run_setup import (add_launcher_arguments,
                                        export_local_rank, init_run,
                                        load_run_config)

# Large activations reuse freed memory instead of fresh page-faulted maps.
keep_freed_memory()


def parse_args():
    parser = argparse.ArgumentParser(description='Train a re-ID model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or, with no value, from the '
        'latest readable checkpoint in the work dir')
    parser.add_argument(
        '--force',
        action='store_true',
        help='start a new run in a work dir that already holds one: the '
        'earlier run is renamed to <work_dir>.old-<time> (nothing is '
        'deleted)')
    add_cfg_options(parser, example='train_cfg.max_epochs=2')
    add_launcher_arguments(parser)
    args = parser.parse_args()
    export_local_rank(args)
    return args


def merge_args(cfg: Config, args) -> Config:
    """The training settings of the command line: device-fit optimizer
    wrapper and resumption."""
    if cfg.get('optim_wrapper') is not None:
        cfg.optim_wrapper = fit_optim_wrapper_to_device(
            cfg.optim_wrapper, source=f'{args.config}: optim_wrapper')
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def check_work_dir(cfg: Config, force: bool) -> None:
    """Refuse to train over the checkpoints of an earlier run."""
    if force and cfg.get('resume'):
        raise SystemExit('--force starts a new run and --resume (or resume '
                         'in the config) continues one: use only one')
    if cfg.get('resume') or force:
        return
    found = sorted(glob.glob(osp.join(cfg.work_dir, '*.pth')))
    if found:
        raise SystemExit(
            f'{cfg.work_dir} already holds checkpoints ({len(found)}, e.g. '
            f'{osp.basename(found[-1])}). Continue that run with --resume, '
            'pick another --work-dir, or pass --force to start over in it.')


def clear_work_dir(work_dir: str) -> None:
    """--force: move an earlier run aside (main process; others wait)."""
    if is_main_process():
        try:
            moved = move_work_dir_aside(work_dir)
        except OSError as err:
            raise SystemExit(f'--force: cannot move the earlier run in '
                             f'{work_dir} aside: {err}')
        if moved is not None:
            print(f'--force: moved the earlier run in {work_dir} to {moved} '
                  '(nothing deleted); the new run starts in an empty '
                  f'{work_dir}', flush=True)
    barrier()


def pick_resume_checkpoint(cfg: Config, from_command_line: bool) -> None:
    """Set ``cfg.load_from`` to the checkpoint to resume in the work dir.

    The one ``last_checkpoint`` names (resolved against the work dir), or
    the newest readable one when that is missing or unreadable. With
    ``--resume`` and nothing to resume, stop; with ``resume=True`` in the
    config, start from scratch as mmengine does.
    """
    try:
        found = find_resume_checkpoint(cfg.work_dir)
    except FileNotFoundError as err:
        if from_command_line:
            raise SystemExit(
                f'--resume: {err}. To start a new run there, leave out '
                '--resume; to continue from a given file, pass --resume '
                'PATH.')
        cfg.resume = False
        if is_main_process():
            print(f'resume=True: {err}; starting from scratch', flush=True)
        return
    if is_main_process():
        for path, why in found.skipped:
            print(f'--resume: skipped {path}: {why}', file=sys.stderr,
                  flush=True)
        print(f'--resume: resuming from {found.path}', flush=True)
    cfg.load_from = found.path


def main():
    args = parse_args()
    cfg = load_run_config(args.config, args.launcher, args.cfg_options,
                          args.work_dir)
    cfg = merge_args(cfg, args)
    check_work_dir(cfg, args.force)
    init_run(cfg, args.config, args.launcher)
    if args.force:
        clear_work_dir(cfg.work_dir)
    if cfg.get('resume') and cfg.get('load_from') is None:
        pick_resume_checkpoint(cfg, args.resume == 'auto')
    runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
