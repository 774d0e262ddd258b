"""Evaluate a checkpoint on the query and gallery of a config's dataset.

    python tools/test.py CONFIG CHECKPOINT
    python tools/test.py CONFIG --initial-weights   # e.g. ImageNet weights
"""
import os

# See tools/train.py: sleeping OpenMP threads, set before torch is imported.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import argparse
import os.path as osp

from mmengine.config import Config
from mmengine.runner import Runner

from mmreid_rcl.engine.runner.state_dict_check import (CheckpointMismatchError,
                                                       load_checkpoint_checked)
from mmreid_rcl.utils.cli import add_cfg_options
from mmreid_rcl.utils.malloc import keep_freed_memory
from mmreid_rcl.utils.run_setup import (add_launcher_arguments,
                                        export_local_rank, init_run,
                                        load_run_config)

# Large activations reuse freed memory instead of fresh page-faulted maps.
keep_freed_memory()


def parse_args():
    parser = argparse.ArgumentParser(description='Test a re-ID model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file')
    parser.add_argument(
        '--initial-weights',
        action='store_true',
        help="evaluate the config's initial weights (its init_cfg, e.g. "
        'ImageNet weights of the backbone) instead of a checkpoint')
    parser.add_argument('--work-dir', help='where the test logs go')
    parser.add_argument(
        '--allow-partial',
        action='store_true',
        help='evaluate even when the checkpoint does not fit the model '
        '(more than max(2, 1 %%) of its entries missing, of another shape '
        'or left over)')
    add_cfg_options(parser)
    add_launcher_arguments(parser)
    args = parser.parse_args()
    if args.initial_weights == (args.checkpoint is not None):
        parser.error('give a checkpoint or --initial-weights (one of them)')
    export_local_rank(args)
    return args


def set_test_only(cfg: Config, config: str, checkpoint: str) -> None:
    """Evaluate ``checkpoint`` on the test split (the validation split of a
    config that defines no test split), without the training parts."""
    if cfg.get('test_dataloader') is None and cfg.get('val_dataloader'):
        cfg.test_dataloader = cfg.val_dataloader
        cfg.test_evaluator = cfg.get('val_evaluator', dict(type='ReIDMetric'))
    if cfg.get('test_cfg') is None:
        cfg.test_cfg = dict(type='TestLoop')
    if cfg.get('test_dataloader') is None:
        raise SystemExit(f'{config} defines neither test_dataloader nor '
                         'val_dataloader: nothing to evaluate on')
    cfg.load_from = checkpoint
    cfg.resume = False
    # Testing needs neither the training loop nor its hooks.
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler', 'custom_hooks'):
        cfg.pop(key, None)


def main():
    args = parse_args()
    if args.checkpoint is not None and not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint {args.checkpoint} does not exist')
    cfg = load_run_config(args.config, args.launcher, args.cfg_options,
                          args.work_dir)
    set_test_only(cfg, args.config, args.checkpoint)
    init_run(cfg, args.config, args.launcher)
    runner = Runner.from_cfg(cfg)
    if args.initial_weights:
        runner.model.init_weights()
    else:
        try:  # before evaluating: refuse a checkpoint of another model
            load_checkpoint_checked(runner.model, args.checkpoint,
                                    args.allow_partial)
        except CheckpointMismatchError as err:
            raise SystemExit(
                f'{err}\nPass --allow-partial to evaluate anyway.')
    metrics = runner.test()
    print(metrics)


if __name__ == '__main__':
    main()
