"""Evaluate a checkpoint on the query and gallery of a config's dataset.

    python tools/test.py CONFIG CHECKPOINT
"""
import os

# See tools/train.py: sleeping OpenMP threads, set before torch is imported.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import argparse
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from mmreid_rcl.engine.runner.state_dict_check import (CheckpointMismatchError,
                                                       load_checkpoint_checked)
from mmreid_rcl.utils import init_process_group_for, register_all_modules
from mmreid_rcl.utils.config_utils import (fit_model_wrapper_to_device,
                                           merge_cfg_options)
from mmreid_rcl.utils.malloc import keep_freed_memory

# Configs under projects/ import `projects.<name>` through custom_imports:
# the repository root must be importable when this script is run directly.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
# Large activations reuse freed memory instead of fresh page-faulted maps.
keep_freed_memory()


def parse_args():
    parser = argparse.ArgumentParser(description='Test a re-ID model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where the test logs go')
    parser.add_argument(
        '--allow-partial',
        action='store_true',
        help='evaluate even when the checkpoint does not fit the model '
        '(more than max(2, 1 %%) of its entries missing, of another shape '
        'or left over)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm'],
        default='none',
        help='job launcher: pytorch for torchrun (tools/dist_*.sh), slurm '
        'for srun (tools/slurm_*.sh)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint {args.checkpoint} does not exist')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    try:
        merge_cfg_options(cfg, args.cfg_options)  # data_root reaches loaders
    except ValueError as err:
        raise SystemExit(str(err))
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    # Configs that only define validation are tested on the same split.
    if cfg.get('test_dataloader') is None and cfg.get('val_dataloader'):
        cfg.test_dataloader = cfg.val_dataloader
        cfg.test_evaluator = cfg.get('val_evaluator', dict(type='ReIDMetric'))
    if cfg.get('test_cfg') is None:
        cfg.test_cfg = dict(type='TestLoop')
    if cfg.get('test_dataloader') is None:
        raise SystemExit(f'{args.config} defines neither test_dataloader nor '
                         'val_dataloader: nothing to evaluate on')
    cfg.load_from = args.checkpoint
    cfg.resume = False
    # Testing needs neither the training loop nor its hooks.
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler', 'custom_hooks'):
        cfg.pop(key, None)
    fit_model_wrapper_to_device(cfg)
    register_all_modules()
    dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', {})
    try:
        init_process_group_for(args.launcher, dist_cfg.get('backend', 'auto'),
                               dist_cfg.get('timeout'))
    except ValueError as err:
        raise SystemExit(f'{args.config}: {err}')
    runner = Runner.from_cfg(cfg)
    try:  # before evaluating: refuse a checkpoint of another model
        load_checkpoint_checked(runner.model, args.checkpoint,
                                args.allow_partial)
    except CheckpointMismatchError as err:
        raise SystemExit(f'{err}\nPass --allow-partial to evaluate anyway.')
    metrics = runner.test()
    print(metrics)


if __name__ == '__main__':
    main()
