"""Threads of faiss (OpenMP) and of the BLAS numpy calls.

mmengine sets ``OMP_NUM_THREADS=1`` in distributed runs, which leaves
faiss and the BLAS on one core while rank 0 clusters and the other ranks
wait: the clustering asks for its threads explicitly, for the time of a
search, and gives the previous settings back afterwards.
"""
import os
from contextlib import contextmanager
from typing import Optional

import faiss
import numpy as np
from threadpoolctl import threadpool_limits


def available_cpus() -> int:
    """Number of CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def current_threads() -> int:
    """Threads faiss' OpenMP loops use now (those that
    :func:`faiss_num_threads` set, inside it)."""
    return faiss.omp_get_max_threads()


def blas_threads(num_threads: int) -> threadpool_limits:
    """A context that runs the BLAS with ``num_threads`` threads (faiss'
    OpenMP threads unchanged), then restores the previous limit."""
    return threadpool_limits(limits=int(num_threads), user_api='blas')


@contextmanager
def faiss_num_threads(num_threads: Optional[int] = None):
    """Run faiss and the BLAS with ``num_threads`` threads, then restore.

    Args:
        num_threads (int, optional): threads for faiss and the BLAS.
            ``None`` uses every CPU available to the process.
    """
    if num_threads is None:
        num_threads = available_cpus()
    if isinstance(num_threads, bool) or not isinstance(
            num_threads, (int, np.integer)) or num_threads < 1:
        raise ValueError(
            f'num_threads must be a positive int or None, got {num_threads!r}')
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(int(num_threads))
    try:
        with blas_threads(num_threads):
            yield
    finally:
        faiss.omp_set_num_threads(previous)
