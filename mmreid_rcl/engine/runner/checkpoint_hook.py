"""Checkpoint saving that survives a killed process and a moved folder."""
import os
import os.path as osp
import re

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from mmreid_rcl.registry import HOOKS
from .checkpoint import TEMP_NAME, write_bytes_atomic

LAST_CHECKPOINT = 'last_checkpoint'


@HOOKS.register_module()
class ReIDCheckpointHook(CheckpointHook):
    """mmengine's CheckpointHook with safer writing.

    Takes the same arguments. Differences:

    - Checkpoints in a local folder are written atomically (the
      ``atomic_local`` file backend, unless ``backend_args`` or
      ``file_client_args`` choose another): a process killed while saving
      leaves the earlier checkpoints and no truncated file.
    - ``<work_dir>/last_checkpoint`` holds the file name relative to the
      work dir when the checkpoint is inside it, so a moved or copied work
      dir resumes from its own files; it too is written atomically.
    - With ``max_keep_ckpts``, the oldest checkpoint is removed only after
      the new one is saved, never before.
    - Temporary files left in the checkpoint folder by a process killed
      while saving (``.NAME.<hex>.tmp``) are removed when training starts.
    """

    def before_train(self, runner) -> None:
        out_dir = self.out_dir if self.out_dir is not None else \
            runner.work_dir
        atomic = (self.backend_args is None and self.file_client_args is None
                  and '://' not in str(out_dir))
        if atomic:
            self.backend_args = dict(backend='atomic_local')
        super().before_train(runner)
        if atomic and is_main_process():
            remove_partial_writes(self.out_dir, runner.logger)

    def _save_checkpoint_with_step(self, runner, step, meta):
        outdated = None
        # _save_checkpoint and _save_best_checkpoint may both save `step`.
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        # Sharded (model-parallel) saving involves every rank; the files
        # are managed by the main one.
        if not is_main_process():
            return
        write_bytes_atomic(
            last_checkpoint_entry(runner.work_dir, self.last_ckpt).encode(),
            osp.join(runner.work_dir, LAST_CHECKPOINT))
        if outdated is not None:
            path = self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(outdated))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                # checkpoints saved by deepspeed are folders
                self.file_backend.rmtree(path)


def last_checkpoint_entry(work_dir: str, checkpoint: str) -> str:
    """What ``last_checkpoint`` records for ``checkpoint``.

    The bare file name when the checkpoint is directly in ``work_dir``
    (read back relative to the work dir), otherwise its full path.
    """
    checkpoint = str(checkpoint)
    if '://' not in checkpoint and osp.dirname(osp.abspath(
            checkpoint)) == osp.abspath(work_dir):
        return osp.basename(checkpoint)
    return checkpoint


def remove_partial_writes(folder: str, logger=None) -> list:
    """Remove the temporary files of saves that were killed midway.

    Only names :func:`write_bytes_atomic` gives (``.NAME.<12 hex>.tmp``),
    directly in ``folder``.

    Returns:
        list[str]: the files removed.
    """
    if not osp.isdir(folder):
        return []
    removed = []
    for name in sorted(os.listdir(folder)):
        path = osp.join(folder, name)
        if re.fullmatch(TEMP_NAME, name) and osp.isfile(path):
            os.remove(path)
            removed.append(path)
            if logger is not None:
                logger.warning(f'Removed {path}, the unfinished write of a '
                               'save that was interrupted')
    return removed
