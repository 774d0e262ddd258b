"""Reading and writing local checkpoints safely.

Loading: torch.load defaults to ``weights_only=True`` since torch 2.6, but
mmengine checkpoints hold message-hub history buffers and numpy objects,
so resuming fails with an unpickling error. Local files are ones the user
points at (``--resume``, ``load_from``, ``init_cfg``), so they are read in
full. A file that cannot be read is reported by name. Remote schemes keep
mmengine's loaders.

Writing: a process killed while writing a checkpoint must not leave a
truncated file under the checkpoint's name, nor damage the file it was
replacing. :func:`write_bytes_atomic` writes to a temporary file in the
same folder, syncs it to disk and renames it onto the final name, and the
``atomic_local`` file backend routes mmengine's checkpoint saving through
it.
"""
import os
import os.path as osp
import pickle
import uuid
import zipfile
from typing import Union

import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.utils import mkdir_or_exist

# What torch.load raises on a truncated or damaged file: the zip reader's
# RuntimeError, or the unpickler's errors for old-style files.
_UNREADABLE = (RuntimeError, EOFError, pickle.UnpicklingError,
               zipfile.BadZipFile, ValueError)


# The temporary files of write_bytes_atomic: .NAME.<12 hex digits>.tmp
TEMP_NAME = r'\..+\.[0-9a-f]{12}\.tmp'


class CheckpointUnreadableError(RuntimeError):
    """A checkpoint file exists but cannot be deserialised."""


def _unreadable(filename: str, err: Exception) -> CheckpointUnreadableError:
    return CheckpointUnreadableError(
        f'checkpoint {filename} is unreadable (truncated or corrupt?): '
        f'{err}')


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_local_checkpoint(filename: str, map_location=None):
    """Load a checkpoint from a local path (any pickled content).

    Raises:
        FileNotFoundError: ``filename`` is not a file.
        CheckpointUnreadableError: it cannot be deserialised; the message
            names the file.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    try:
        return torch.load(
            filename, map_location=map_location, weights_only=False)
    except _UNREADABLE as err:
        raise _unreadable(filename, err) from err


def check_checkpoint_readable(filename: str) -> dict:
    """Open a checkpoint without reading its tensors.

    The archive's index and the pickled structure are read, the tensor
    data are only memory-mapped, so this is cheap even for large files and
    catches truncated ones (the zip index sits at the end of the file).

    Returns:
        dict: the checkpoint's ``meta`` (empty when it has none).

    Raises:
        FileNotFoundError: ``filename`` is not a file.
        CheckpointUnreadableError: it cannot be deserialised.
    """
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    try:
        if zipfile.is_zipfile(filename):
            checkpoint = torch.load(
                filename, map_location='cpu', weights_only=False, mmap=True)
        else:
            checkpoint = torch.load(
                filename, map_location='cpu', weights_only=False)
    except _UNREADABLE as err:
        raise _unreadable(filename, err) from err
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    return meta if isinstance(meta, dict) else {}


def write_bytes_atomic(data: bytes, filepath: Union[str, os.PathLike]):
    """Write ``data`` to ``filepath`` so that it is complete or absent.

    The bytes go to a hidden temporary file beside ``filepath`` (same file
    system, so the rename is atomic), which is flushed and fsync'ed, then
    renamed onto ``filepath``; an earlier file of that name stays intact
    until the rename. The temporary file is removed on any error; only a
    process killed mid-write leaves one behind (``.NAME.*.tmp``, never
    taken for a checkpoint).
    """
    filepath = osp.abspath(os.fspath(filepath))
    folder, name = osp.split(filepath)
    mkdir_or_exist(folder)
    tmp = osp.join(folder, f'.{name}.{uuid.uuid4().hex[:12]}.tmp')
    # 0o666 minus the umask: the permissions open(..., 'wb') would give.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    # Make the rename itself durable (POSIX; not possible on Windows).
    if hasattr(os, 'O_DIRECTORY'):
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose writes are atomic.

    Selected with ``backend_args=dict(backend='atomic_local')``; the
    checkpoint hook of this package does so for local folders.
    """

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        write_bytes_atomic(obj, filepath)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, os.PathLike],
                 encoding: str = 'utf-8') -> None:
        write_bytes_atomic(obj.encode(encoding), filepath)
