"""Finding the checkpoint to resume in a work dir, and clearing one.

``<work_dir>/last_checkpoint`` names the latest checkpoint: relative to
the work dir when written by :class:`ReIDCheckpointHook`, an absolute path
when written by mmengine's CheckpointHook. Either is resolved against the
work dir, so a moved or copied work dir resumes from its own files.
"""
import glob
import os
import os.path as osp
import re
import time
from typing import List, NamedTuple, Optional, Tuple

from .checkpoint import CheckpointUnreadableError, check_checkpoint_readable
from .checkpoint_hook import LAST_CHECKPOINT

_CHECKPOINT_NAME = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


class ResumePoint(NamedTuple):
    """The checkpoint to resume from, and the ones passed over.

    Attributes:
        path (str): the checkpoint to resume from.
        skipped (list[tuple[str, str]]): (file, why) of every newer or
            recorded checkpoint that could not be used.
    """
    path: str
    skipped: List[Tuple[str, str]]


def resolve_last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``<work_dir>/last_checkpoint`` names, or None.

    A relative entry is taken relative to ``work_dir``. For an absolute
    entry (older runs), the file of the same name inside ``work_dir`` wins
    when it exists: the work dir may have been moved or copied since. The
    path returned may not exist.
    """
    record = osp.join(work_dir, LAST_CHECKPOINT)
    if not osp.isfile(record):
        return None
    with open(record) as f:
        entry = f.read().strip()
    if not entry:
        return None
    if '://' in entry:
        return entry
    if not osp.isabs(entry):
        return osp.join(work_dir, entry)
    inside = osp.join(work_dir, osp.basename(entry))
    return inside if osp.isfile(inside) else entry


def _why_unusable(path: str) -> Optional[str]:
    try:
        check_checkpoint_readable(path)
    except FileNotFoundError:
        return 'does not exist'
    except CheckpointUnreadableError as err:
        return str(err)
    return None


def find_resume_checkpoint(work_dir: str) -> ResumePoint:
    """The checkpoint a run resumed in ``work_dir`` should start from.

    The one ``last_checkpoint`` names when it can be read; otherwise the
    newest readable ``epoch_*.pth`` / ``iter_*.pth`` in ``work_dir``
    (newest by the iteration recorded in it).

    Raises:
        FileNotFoundError: ``work_dir`` holds no readable checkpoint; the
            message names the work dir and what was found.
    """
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'work dir {work_dir} does not exist')
    skipped = []
    recorded = resolve_last_checkpoint(work_dir)
    if recorded is not None:
        why = None if '://' in recorded else _why_unusable(recorded)
        if why is None:
            return ResumePoint(recorded, skipped)
        skipped.append((recorded, why))
    tried = {osp.abspath(path) for path, _ in skipped}
    ranked = []
    for path in sorted(glob.glob(osp.join(work_dir, '*_*.pth'))):
        match = _CHECKPOINT_NAME.match(osp.basename(path))
        if match is None or osp.abspath(path) in tried:
            continue
        try:
            meta = check_checkpoint_readable(path)
        except (FileNotFoundError, CheckpointUnreadableError) as err:
            skipped.append((path, str(err)))
            continue
        kind, number = match.groups()
        step = meta.get('iter')
        step = step if isinstance(step, int) else -1
        # Equal iterations: an epoch checkpoint ends the epoch.
        ranked.append(((step, kind == 'epoch', int(number)), path))
    if ranked:
        return ResumePoint(max(ranked)[1], skipped)
    if skipped:
        reasons = '; '.join(f'{osp.basename(p)}: {why}' for p, why in skipped)
        raise FileNotFoundError(
            f'no readable checkpoint in {work_dir} ({reasons})')
    raise FileNotFoundError(
        f'no checkpoint in {work_dir} (no {LAST_CHECKPOINT} file, no '
        'epoch_*.pth or iter_*.pth)')


def move_work_dir_aside(work_dir: str) -> Optional[str]:
    """Rename a non-empty ``work_dir`` to ``<work_dir>.old-<time>``.

    ``<time>`` is the folder's last modification (the earlier run's last
    write), with ``-1``, ``-2``, ... added if that name is taken. Nothing is
    deleted.

    Returns:
        str | None: the new name, None when ``work_dir`` is missing or
        empty (nothing to move).
    """
    if not osp.exists(work_dir):
        return None
    if not osp.isdir(work_dir):
        raise NotADirectoryError(f'work dir {work_dir} exists and is not a '
                                 'folder')
    if not os.listdir(work_dir):
        return None
    work_dir = osp.normpath(work_dir)
    stamp = time.strftime('%Y%m%d_%H%M%S',
                          time.localtime(osp.getmtime(work_dir)))
    base = f'{work_dir}.old-{stamp}'
    target, n = base, 1
    while osp.exists(target):
        target, n = f'{base}-{n}', n + 1
    os.rename(work_dir, target)
    return target
