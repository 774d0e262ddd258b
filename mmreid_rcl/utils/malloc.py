"""Keeping freed memory in the process, for faster CPU steps."""
import ctypes
import os

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Make glibc malloc keep freed memory for reuse; True if it took.

    By default glibc serves every block above 32 MB with a fresh mmap and
    unmaps it on free, so each batch's large activations are page-faulted
    and zeroed by the kernel again: on a 2-core CPU that made a training
    step 16-35 % and feature extraction 1.7-3x slower
    (tools/benchmarks/bench_training.py and bench_extraction.py measure
    both ways). ``M_MMAP_MAX = 0`` serves large blocks from the heap and a
    large ``M_TRIM_THRESHOLD`` keeps the heap, so the process holds its peak
    memory until it exits. Call it before the first large allocation. Set
    the environment variable ``MMREID_RCL_MALLOC=glibc`` to keep glibc's
    defaults; on systems without glibc it does nothing.

    Returns:
        bool: whether both settings were applied.
    """
    if os.environ.get('MMREID_RCL_MALLOC', 'keep') == 'glibc':
        return False
    try:
        libc = ctypes.CDLL('libc.so.6')
    except OSError:
        return False
    return (libc.mallopt(_M_MMAP_MAX, 0) == 1
            and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1)
