from .checkpoint import (AtomicLocalBackend, CheckpointUnreadableError,
                         check_checkpoint_readable, load_local_checkpoint,
                         write_bytes_atomic)
from .checkpoint_hook import (ReIDCheckpointHook, last_checkpoint_entry,
                              remove_partial_writes)
from .loops import ReIDTrainLoop
from .work_dir import (ResumePoint, find_resume_checkpoint,
                       move_work_dir_aside, resolve_last_checkpoint)

__all__ = [
    'AtomicLocalBackend', 'CheckpointUnreadableError', 'ReIDCheckpointHook',
    'ReIDTrainLoop', 'ResumePoint', 'check_checkpoint_readable',
    'find_resume_checkpoint', 'last_checkpoint_entry',
    'load_local_checkpoint', 'move_work_dir_aside', 'remove_partial_writes',
    'resolve_last_checkpoint', 'write_bytes_atomic'
]
