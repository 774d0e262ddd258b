"""What tools/train.py and tools/test.py share: the command-line options of
a run, its config and its processes."""
import argparse
import os
import os.path as osp
import sys
from typing import Optional

from mmengine.config import Config

from .config_utils import fit_model_wrapper_to_device, merge_cfg_options
from .dist_utils import init_process_group_for
from .setup_env import register_all_modules


def add_launcher_arguments(parser: argparse.ArgumentParser) -> None:
    """``--launcher`` and ``--local_rank`` (set by the launchers)."""
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm'],
        default='none',
        help='job launcher: pytorch for torchrun (tools/dist_*.sh), slurm '
        'for srun (tools/slurm_*.sh)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def export_local_rank(args: argparse.Namespace) -> None:
    """Hand ``--local_rank`` to the environment when no launcher set
    ``LOCAL_RANK`` (torch.distributed reads it there)."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)


def make_projects_importable() -> None:
    """Let configs under ``projects/`` import ``projects.<name>``.

    Such a config names its module in ``custom_imports``; ``projects/``
    is no installed package but sits beside ``mmreid_rcl`` in the
    checkout, whose root is put on ``sys.path`` when it holds one.
    """
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    if osp.isdir(osp.join(root, 'projects')) and root not in sys.path:
        sys.path.insert(0, root)


def load_run_config(config: str,
                    launcher: str = 'none',
                    cfg_options: Optional[dict] = None,
                    work_dir: Optional[str] = None) -> Config:
    """The config of a run, with the command line's settings.

    Args:
        config (str): the config file.
        launcher (str): ``--launcher``, stored as ``cfg.launcher``.
        cfg_options (dict, optional): ``--cfg-options``, merged in (see
            :func:`merge_cfg_options`).
        work_dir (str, optional): ``--work-dir``; without it the config's
            ``work_dir``, else ``./work_dirs/<config name>``.

    Returns:
        Config: the merged config.

    Raises:
        SystemExit: a ``--cfg-options`` entry is refused, with the reason.
    """
    make_projects_importable()
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    try:
        merge_cfg_options(cfg, cfg_options)  # data_root reaches loaders
    except ValueError as err:
        raise SystemExit(str(err))
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg


def init_run(cfg: Config, config: str, launcher: str = 'none') -> None:
    """Fit the model wrapper to the device, register the components and
    join the process group of the launcher.

    Args:
        cfg (Config): the config of the run (see :func:`load_run_config`).
        config (str): the config file, named in messages.
        launcher (str): ``--launcher``.

    Raises:
        SystemExit: the process group cannot be set up as configured.
    """
    fit_model_wrapper_to_device(cfg)
    register_all_modules()
    dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', {})
    try:
        init_process_group_for(launcher, dist_cfg.get('backend', 'auto'),
                               dist_cfg.get('timeout'))
    except ValueError as err:
        raise SystemExit(f'{config}: {err}')
