"""How much memory a re-clustering needs, and how much the process may use.

:func:`clustering_memory` estimates, from the number of samples N, their
dimension D, ``k1``, ``k2`` and the kNN search, the peak of the memory a
re-clustering allocates on top of the features it is given, stage by
stage. The kNN search, the encoding and the pair step work on blocks of
bounded size (see :mod:`.knn` and :mod:`.jaccard_distance`), so each stage
holds a few arrays of N rows plus a bounded working set:

=============  ===========================================================
stage          what is alive at its peak
=============  ===========================================================
``knn``        the projected features (N x (dim + 1) float32), the
               result (N x k1, 12 bytes each) and one block of candidates
``encoding``   the neighbours, the reciprocal and expanded sets, the
               encoding V before and after the query expansion
``jaccard``    V and its column layout (about 24 bytes per entry) and one
               block of pair contributions per worker thread
``dbscan``     the sparse distance and the neighbour graph made from it
=============  ===========================================================

The sizes of the sets depend on the data. The estimate assumes what
re-ID features give (measured on the synthetic features of
``tools/benchmarks/bench_clustering.py`` from 10,000 to 100,000 samples,
k1 from 10 to 60, k2 from 1 to 10): expanded sets of ``1.25 k1`` samples,
an encoding of ``1.25 k1 (1 + 0.3 (k2 - 1))`` entries per row (2.8 k1
measured at 100,000 samples with k2 = 6) and ``0.6 k1`` pairs within
``eps`` per row. Features without cluster structure (isotropic noise) give
up to twice the entries: the label generator checks again with the real
sizes before the pair step and before DBSCAN.

:func:`available_memory` is the memory the process may still allocate:
the least of the room left under the soft ``RLIMIT_AS`` (address space,
which the libraries' reservations already fill: a CUDA build of torch
maps 3.6 GB at import), under ``RLIMIT_DATA`` (writable private memory,
the limit to use for a memory cap: ``ulimit -d``), under the cgroup
memory limit (``memory.max``, or ``memory.limit_in_bytes`` in cgroup v1,
reclaimable page cache not counted as used) and ``MemAvailable`` of
``/proc/meminfo``. Memory that malloc holds freed (all of it after
:func:`mmreid_rcl.utils.malloc.keep_freed_memory`) is counted as free.
Against the two rlimits the clustering also needs what it maps without
touching much of it (``reserved`` of :func:`clustering_memory`): the work
buffer of faiss' OpenBLAS (128 MB) and the stacks of its threads.
"""
import ctypes
import os.path as osp
import resource
from typing import Dict, List, NamedTuple, Optional, Tuple

from mmreid_rcl.utils.threads import available_cpus
from .jaccard_distance import DEFAULT_CHUNK_SIZE, PAIR_BLOCK_SIZE
from .k_reciprocal import OVERLAP_BLOCK_SIZE
from .knn import (DEFAULT_KNN, AutoKnn, ExactKnn, GraphKnn, HNSWKnn, IVFKnn,
                  KnnConfig, NNDescentKnn, PCAKnn, PyNNDescentKnn, build_knn,
                  pca_pays_off)

GB = 1 << 30
MB = 1 << 20

# Sizes the estimate assumes (see the module docstring): expanded set
# E(i) per k1, growth of the encoding per extra neighbour of the query
# expansion, and pairs within eps per k1.
EXPANDED_PER_K1 = 1.25
EXPANSION_GROWTH = 0.3
PAIRS_PER_K1 = 0.6

# What the arrays do not show: BLAS buffers and freed memory that malloc
# keeps resident, in all and per thread (measured 30-70 MB between the
# peak RSS and numpy's traced peak on 1 or 2 threads).
LIBRARY_BYTES = 24 * MB
THREAD_RESIDENT_BYTES = 8 * MB
# Writable memory mapped beyond what is kept resident, which counts
# against RLIMIT_DATA and RLIMIT_AS only: the work buffer faiss' OpenBLAS
# maps at its first product (128 MB, once per process) and a stack per
# thread (8 MB under the usual stack limit). Measured: 100-150 MB between
# the growth of VmData and of the RSS, on 1 or 2 threads.
BLAS_BUFFER_BYTES = 128 * MB
THREAD_STACK_BYTES = 8 * MB
# The k-means of the 'ivf' index allocates in faiss' OpenMP threads, each
# of which grows a malloc arena (heaps of 64 MB whose freed pages stay
# mapped).
THREAD_ARENA_BYTES = 64 * MB
# Working memory per candidate of a kNN block and per pair contribution
# of the Jaccard step.
KNN_BYTES_PER_CANDIDATE = 40
PAIR_BYTES_PER_CONTRIBUTION = 40
# A faiss brute-force search keeps a 4096 x 1024 block of distances.
FAISS_BLOCK_BYTES = 4096 * 1024 * 4
# NN-descent's per-sample lists grow as std::vectors (capacity above
# size) from per-thread heaps: measured 4.16 GB above the features at
# 1,000,000 x 2048, degree 48, 2 threads, against 3.29 GB counted from
# the lists' sizes, so their part is scaled by this much.
NNDESCENT_LIST_SLACK = 1.4
# pynndescent's arrays are allocated whole (numpy): no slack. Estimated
# 3.33 GB for its search at 1,000,000 x 2048, degree 64, against 3.06 GB
# measured above the features for the whole re-clustering.
PYNNDESCENT_SLACK = 1.0
# What numba's compiler holds after compiling pynndescent's functions
# (measured about 350 MB at 20,000 samples, whose arrays are small).
NUMBA_JIT_BYTES = 400 * MB


class ClusteringMemoryError(MemoryError):
    """A re-clustering refused because it would not fit in memory."""


class MemoryBudget(NamedTuple):
    """Memory the process may still allocate and the limit that binds.

    Attributes:
        available (int): bytes.
        limit (str): the binding limit, in words.
    """
    available: int
    limit: str


def _gb(num_bytes: float) -> str:
    return f'{num_bytes / GB:.2f} GB'


def model_sizes(k1: int, k2: int, eps: float = 0.6) -> Dict[str, float]:
    """The assumed per-row sizes of the sets (module docstring).

    Args:
        k1 (int): k of the k-reciprocal sets.
        k2 (int): neighbours of the query expansion.
        eps (float): DBSCAN radius; pairs farther away are not stored.

    Returns:
        dict: ``expanded`` (entries of E(i)), ``encoding`` (of V after the
        query expansion) and ``pairs`` (stored pairs i < j within
        ``eps``) per sample.
    """
    expanded = EXPANDED_PER_K1 * k1
    return dict(
        expanded=expanded,
        encoding=expanded * (1 + EXPANSION_GROWTH * (k2 - 1)),
        # The radius used by the benchmarks; a wider one keeps more.
        pairs=PAIRS_PER_K1 * k1 * max(1.0, eps / 0.6))


def knn_memory(num: int, dim: int, k: int,
               knn: KnnConfig = DEFAULT_KNN) -> int:
    """Peak bytes of :func:`~mmreid_rcl.clustering.knn.knn_search`,
    its result (N x k similarities and indices) included.

    Args:
        num (int): samples N.
        dim (int): feature dimension D.
        k (int): neighbours per sample.
        knn (str | dict): the search, as for ``knn_search``.

    Returns:
        int: bytes.
    """
    searcher = build_knn(knn)
    result = num * k * 12  # float32 similarities + int64 indices
    if isinstance(searcher, ExactKnn):
        return result + FAISS_BLOCK_BYTES
    if isinstance(searcher, PCAKnn):
        return _pca_knn_memory(num, dim, k, searcher, result)
    if isinstance(searcher, AutoKnn):
        # Brute force, or the projection (its probe fits in one block).
        if num < searcher.min_rows:
            return result + FAISS_BLOCK_BYTES
        rows = searcher.screen_size(num, k) or 0
        # The screen: its samples and their centred copy, the rows x rows
        # similarities and bound distances and a partitioned copy.
        screen = 2 * (rows + rows // 2) * dim * 4 + 3 * rows * rows * 4
        return max(
            screen,
            _pca_knn_memory(num, dim, k, searcher.pca, result,
                            projected=True))
    if isinstance(searcher, NNDescentKnn):
        return _nndescent_memory(num, dim, k, searcher, result)
    if isinstance(searcher, PyNNDescentKnn):
        return _pynndescent_memory(num, dim, k, searcher, result)
    # hnsw / ivf: the index holds its own copy of what it searches.
    proj = searcher.dim
    if proj is not None and proj < dim:
        width = min(num, searcher.refine * k)
        data = num * (proj + 1) * 4
        searched = proj + 1
        train = min(searcher.train_size or num, num)
        fit = _principal_axes_memory(dim, proj, min(train, 8192))
    else:
        width, data, searched, fit = k, 0, dim, 0
    copy = num * searched * 4
    if isinstance(searcher, HNSWKnn):
        # Level 0 keeps 2 m links per sample, the upper levels about
        # m / (m - 1) times fewer in all; plus levels and offsets.
        index = copy + num * (2 * searcher.m * 4 * 1.1 + 12)
        build = num * available_cpus()  # a visited table per thread
    else:
        nlist = searcher.cells(num)
        train_size = searcher.samples_trained_on(num)
        index = copy + num * 8 + nlist * searched * 4
        # k-means on the training sample (a copy of it, assignments,
        # distance blocks, centroid sums).
        build = train_size * (searched * 8 + 24) + FAISS_BLOCK_BYTES + \
            nlist * searched * 8
    block = min(searcher.block_size, num * width)
    search = result + block * (12 + 16) + FAISS_BLOCK_BYTES
    return int(max(fit, data + index + max(build, search)))


def _pca_knn_memory(num: int, dim: int, k: int, searcher: PCAKnn,
                    result: int, projected: bool = False) -> int:
    """Peak bytes of a :class:`~mmreid_rcl.clustering.knn.PCAKnn` search
    whose result takes ``result`` bytes (that of the projected search,
    even where it would search by brute force, with ``projected``)."""
    proj = min(searcher.dim, dim)
    train = min(searcher.train_size, num)
    width = min(num, searcher.refine * k)
    if not projected and searcher.verify and not pca_pays_off(
            num, dim, proj, width, train):
        return result + FAISS_BLOCK_BYTES
    fit = _principal_axes_memory(dim, proj, train)
    bound = num * (proj + 1) * 4
    block = min(searcher.block_size, num * width)
    search = (bound + num * (4 + 1) + result +
              block * KNN_BYTES_PER_CANDIDATE + FAISS_BLOCK_BYTES)
    return max(fit, bound + 2 * 8192 * proj * 4, search)


def _nndescent_memory(num: int, dim: int, k: int, searcher: NNDescentKnn,
                      result: int) -> int:
    """Peak bytes of a :class:`~mmreid_rcl.clustering.knn.NNDescentKnn`
    search whose result takes ``result`` bytes."""
    degree = searcher.graph_degree(k)
    if num < searcher.min_rows or num <= degree + 1:
        return result + FAISS_BLOCK_BYTES
    data, fit, after = _graph_steps_memory(num, dim, k, searcher, result)
    # The projection and the index's copy of it; then, with the copy
    # alone, per sample a pool of (id, distance, flag) candidates (12
    # bytes each), its new and old neighbour lists and reverse lists (at
    # most degree + 1 + 5 reverse ids), their headers, and the final
    # graph; times NNDESCENT_LIST_SLACK.
    lists = (12 * searcher.pool + 4 * (degree + 1 + 5 * searcher.reverse) +
             160 + 4 * degree)
    build = data + num * lists * NNDESCENT_LIST_SLACK
    return int(max(fit + data, 2 * data, build, after))


def _graph_steps_memory(num: int, dim: int, k: int, searcher: GraphKnn,
                        result: int) -> Tuple[int, int, int]:
    """Of a :class:`~mmreid_rcl.clustering.knn.GraphKnn` search: the bytes
    of the vectors the graph is built on, the peak of fitting the axes and
    the peak of the steps after the build (re-ranking the graph, int32,
    and searching the weakest rows again on the projection)."""
    degree = searcher.graph_degree(k)
    proj = dim if searcher.dim is None else min(searcher.dim, dim)
    fit = 0
    if proj < dim:
        proj += 1  # the residual's column
        fit = _principal_axes_memory(dim, searcher.dim,
                                     min(searcher.train_size, num))
    data = num * proj * 4
    block = min(searcher.block_size, num * (degree + 1))
    after = num * degree * 4 + result + block * KNN_BYTES_PER_CANDIDATE
    if searcher.exact_share:
        width = min(num, searcher.refine * k)
        again = min(searcher.block_size, num * (width + k))
        after = max(after, result + data + again * KNN_BYTES_PER_CANDIDATE +
                    FAISS_BLOCK_BYTES)
    if searcher.reverse_edges:
        # The edges (int32 targets and sources, int64 order and ranks),
        # the proposals (N x k int32) and a block of 2 k candidates.
        pairs = min(searcher.block_size, num * 2 * k)
        after = max(after, result + num * (k - 1) * 24 + num * k * 4 +
                    pairs * KNN_BYTES_PER_CANDIDATE)
    return data, fit, after


def _pynndescent_memory(num: int, dim: int, k: int,
                        searcher: PyNNDescentKnn, result: int) -> int:
    """Peak bytes of a :class:`~mmreid_rcl.clustering.knn.PyNNDescentKnn`
    search whose result takes ``result`` bytes."""
    degree = searcher.graph_degree(k)
    if num < searcher.min_rows or num <= degree + 1:
        return result + FAISS_BLOCK_BYTES
    data, fit, after = _graph_steps_memory(num, dim, k, searcher, result)
    width = degree + 1
    candidates = searcher.candidates or min(60, width)
    # The graph's heap (index, distance, flag: 9 bytes an entry), the new
    # and old candidates of a round (index and priority: 16 bytes), the
    # forest's leaves, and the graph handed out (indices and distances
    # copied); times PYNNDESCENT_SLACK.
    build = num * (9 * width + 16 * candidates + 8 * width + 64)
    return NUMBA_JIT_BYTES + int(
        max(fit + data, data + build * PYNNDESCENT_SLACK, after))


def _principal_axes_memory(dim: int, proj: int, train: int) -> int:
    """Peak of fitting the principal axes: the sample, its covariance and
    a few float64 D x (dim + 16) blocks."""
    return train * dim * 4 + dim * dim * 4 + 3 * dim * (proj + 16) * 8


def encoding_memory(num: int, k1: int, k2: int) -> int:
    """Peak bytes of :func:`~mmreid_rcl.clustering.k_reciprocal_encoding`
    (the neighbours it reads not included, its result V included), with
    the set sizes of :func:`model_sizes`.

    Args:
        num (int): samples N.
        k1 (int): k of the k-reciprocal sets.
        k2 (int): neighbours of the query expansion.

    Returns:
        int: bytes.
    """
    sizes = model_sizes(k1, k2)
    expanded, encoding = sizes['expanded'], sizes['encoding']
    # The two reciprocal sets (CSR int32 pattern and data), built from
    # COO triplets: about 40 bytes per forward-list entry at the peak.
    half = round(k1 / 2) + 1
    sets = num * (k1 + half) * 8
    build_sets = num * k1 * 40
    # The expansion: one block of the overlap product (about 10 bytes per
    # term of its bound) beside the sets, then E(i) as a CSR pattern.
    expand = sets + OVERLAP_BLOCK_SIZE * 10 + num * expanded * 24
    # The weights of E: rows (int32), the pattern, float64 weights and a
    # gathered temporary; the similarity lookup table (N x k1 keys and
    # values, sorted through an argsort) and one block of looked-up pairs.
    weights = num * expanded * 24
    lookup = num * k1 * 28 + PAIR_BLOCK_SIZE * 50
    # The query expansion: E (float64 data, int32 indices), the averaging
    # matrix from COO and its product V.
    expansion = num * (expanded * 12 + k2 * 40 + encoding * 12)
    return int(max(build_sets, expand, weights + lookup, expansion))


def jaccard_memory(num: int, encoding_nnz: int, pairs: float,
                   chunk_size: int = DEFAULT_CHUNK_SIZE,
                   num_workers: int = 1) -> int:
    """Peak bytes of the pair step of the Jaccard distance, from V to the
    symmetric sparse distance (V itself, float64 as the encoding returns
    it, included).

    Args:
        num (int): samples N.
        encoding_nnz (int): entries of V.
        pairs (float): stored pairs i < j per sample.
        chunk_size (int): pair contributions per block.
        num_workers (int): blocks processed at once.

    Returns:
        int: bytes.
    """
    # Rounding V to float32 briefly holds both copies of its data.
    rounding = encoding_nnz * (4 + 8 + 4)
    # V (float32) and its column layout: rows, values and positions in
    # the CSC order, and partner counts.
    layout = encoding_nnz * (8 + 16) + num * 24
    blocks = min(num_workers, 64) * chunk_size * PAIR_BYTES_PER_CONTRIBUTION
    kept = num * pairs * 8
    # The mirrored distance: the upper triangle, its transpose and the
    # result (about 2 pairs + 1 entries of 8 bytes per row) plus int64
    # scatter positions.
    mirror = num * pairs * 8 * 2 + num * (2 * pairs + 1) * 8 + \
        num * pairs * 16
    return int(max(rounding, layout + blocks + 2 * kept, mirror))


def dbscan_memory(num: int, distance_nnz: int) -> int:
    """Peak bytes of :func:`~mmreid_rcl.clustering.dbscan_labels` on a
    sparse distance of ``distance_nnz`` entries, the distance included.

    The neighbour graph (int64 rows, the kept entries and a lexsort of
    them, about 40 bytes per entry) and sklearn's per-sample neighbour
    lists (an array per sample).

    Args:
        num (int): samples N.
        distance_nnz (int): stored entries of the distance.

    Returns:
        int: bytes.
    """
    return int(distance_nnz * (8 + 40) + num * 200)


def clustering_memory(num: int,
                      dim: int,
                      k1: int = 30,
                      k2: int = 6,
                      knn: KnnConfig = DEFAULT_KNN,
                      chunk_size: int = DEFAULT_CHUNK_SIZE,
                      num_threads: Optional[int] = None,
                      eps: float = 0.6) -> Dict[str, int]:
    """Estimated memory of a re-clustering by
    :class:`~mmreid_rcl.clustering.DBSCANLabelGenerator`, stage by stage.

    The features themselves are not counted (the caller holds them). The
    stages run one after the other, each beside what the previous ones
    keep (the neighbours until the encoding is built, then V, then the
    distance); ``peak`` is the largest of them plus an allowance for the
    libraries' buffers and the threads' stacks.

    Args:
        num (int): samples N.
        dim (int): feature dimension D.
        k1 (int): k of the k-reciprocal sets.
        k2 (int): neighbours of the query expansion.
        knn (str | dict): the kNN search (its method and block size).
        chunk_size (int): pair contributions per block of the Jaccard
            step.
        num_threads (int, optional): threads of the search and of the
            Jaccard step; ``None``: every available CPU.
        eps (float): DBSCAN radius.

    Returns:
        dict: bytes of each stage (``knn``, ``encoding``, ``jaccard``,
        ``dbscan``), of the allowance (``overhead``), ``peak`` (the
        resident memory, what MemAvailable and a cgroup limit see) and
        ``reserved``, the writable memory the threads map on top of it
        (counted against RLIMIT_DATA and RLIMIT_AS only).

    Example:
        >>> need = clustering_memory(100000, 2048)['peak']  # ~0.5 GB
    """
    threads = available_cpus() if num_threads is None else num_threads
    sizes = model_sizes(k1, k2, eps)
    neighbours = num * k1 * 12
    encoding_nnz = int(num * min(sizes['encoding'], num))
    distance_nnz = int(num * (2 * min(sizes['pairs'], num) + 1))
    stages = dict(
        knn=knn_memory(num, dim, k1, knn),
        encoding=neighbours + encoding_memory(num, k1, k2),
        jaccard=neighbours + jaccard_memory(num, encoding_nnz,
                                            sizes['pairs'], chunk_size,
                                            threads),
        dbscan=dbscan_memory(num, distance_nnz))
    stages['overhead'] = LIBRARY_BYTES + threads * THREAD_RESIDENT_BYTES
    stages['peak'] = max(stages[s] for s in ('knn', 'encoding', 'jaccard',
                                             'dbscan')) + stages['overhead']
    per_thread = THREAD_STACK_BYTES
    if isinstance(build_knn(knn), IVFKnn):
        per_thread += THREAD_ARENA_BYTES
    stages['reserved'] = BLAS_BUFFER_BYTES + threads * per_thread
    return stages


def estimate_clustering_memory(num: int, dim: int, k1: int = 30,
                               k2: int = 6, **kwargs) -> int:
    """Estimated peak bytes of a re-clustering (on top of the features):
    ``clustering_memory(...)['peak']``, see :func:`clustering_memory` for
    the arguments."""
    return clustering_memory(num, dim, k1, k2, **kwargs)['peak']


# -- what the process may use ----------------------------------------------
class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t)
                for name in ('arena', 'ordblks', 'smblks', 'hblks',
                             'hblkhd', 'usmblks', 'fsmblks', 'uordblks',
                             'fordblks', 'keepcost')]


def malloc_free_bytes() -> int:
    """Bytes that glibc malloc holds freed in the process (``fordblks`` of
    ``mallinfo2``); 0 where unknown."""
    try:
        libc = ctypes.CDLL('libc.so.6')
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):  # not glibc, or glibc < 2.33
        return 0
    mallinfo2.restype = _MallInfo2
    return int(mallinfo2().fordblks)


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _kv_bytes(text: Optional[str], key: str, unit: int = 1) -> Optional[int]:
    """The number after ``key`` on its line of a ``key value`` file."""
    for line in (text or '').splitlines():
        parts = line.replace(':', ' ').split()
        if len(parts) >= 2 and parts[0] == key:
            try:
                return int(parts[1]) * unit
            except ValueError:
                return None
    return None


def _process_status(proc: str = '/proc/self') -> Dict[str, int]:
    """VmSize and VmData of the process, in bytes (absent if unknown)."""
    text = _read(osp.join(proc, 'status'))
    out = {}
    for key in ('VmSize', 'VmData'):
        value = _kv_bytes(text, key, 1024)
        if value is not None:
            out[key] = value
    return out


def _cgroup_dirs(proc: str = '/proc/self') -> List[str]:
    """The directories of this process' memory cgroup and its ancestors
    (v2 and v1), innermost first."""
    membership = {}
    for line in (_read(osp.join(proc, 'cgroup')) or '').splitlines():
        parts = line.strip().split(':', 2)
        if len(parts) == 3:
            hid, controllers, path = parts
            if hid == '0' and controllers == '':
                membership['cgroup2'] = path
            elif 'memory' in controllers.split(','):
                membership['memory'] = path
    dirs = []
    for line in (_read(osp.join(proc, 'mountinfo')) or '').splitlines():
        fields = line.split()
        if ' - ' not in line or len(fields) < 5:
            continue
        fstype, _, options = line.split(' - ', 1)[1].partition(' ')
        root, mount = fields[3], fields[4]
        if fstype == 'cgroup2':
            path = membership.get('cgroup2')
        elif fstype == 'cgroup' and 'memory' in options.split(
                ' ')[-1].split(','):
            path = membership.get('memory')
        else:
            continue
        if path is None:
            continue
        # The mount shows the hierarchy from `root` (a cgroup namespace
        # shows the process' own cgroup as its root).
        if path.startswith(root):
            rel = path[len(root):]
        else:
            rel = ''
        here = osp.join(mount, rel.lstrip('/'))
        while True:
            dirs.append(here)
            if osp.normpath(here) == osp.normpath(mount):
                break
            here = osp.dirname(here)
    return dirs


def _cgroup_room(directory: str) -> Optional[MemoryBudget]:
    """Room under the memory limit of one cgroup directory (v2 or v1);
    None if it has no limit."""
    v2 = _read(osp.join(directory, 'memory.max'))
    if v2 is not None:
        limit_text, usage_name, stat_key = v2.strip(), 'memory.current', \
            'inactive_file'
        limit_file = 'memory.max'
    else:
        v1 = _read(osp.join(directory, 'memory.limit_in_bytes'))
        if v1 is None:
            return None
        limit_text, usage_name, stat_key = v1.strip(), \
            'memory.usage_in_bytes', 'total_inactive_file'
        limit_file = 'memory.limit_in_bytes'
    if not limit_text.isdigit():  # 'max'
        return None
    limit = int(limit_text)
    # v1 reports "no limit" as a huge page-aligned number.
    if limit >= 1 << 60:
        return None
    usage = _read(osp.join(directory, usage_name))
    if usage is None or not usage.strip().isdigit():
        return None
    # Page cache that the kernel reclaims under pressure is not in use.
    inactive = _kv_bytes(_read(osp.join(directory, 'memory.stat')),
                         stat_key) or 0
    used = max(0, int(usage) - inactive)
    return MemoryBudget(
        limit - used, f'cgroup {osp.join(directory, limit_file)} '
        f'{_gb(limit)}, {_gb(used)} in use')


def memory_limits(reserved: int = 0,
                  proc: str = '/proc/self') -> List[MemoryBudget]:
    """Every limit on the memory this process may still allocate, with the
    room it leaves (see the module docstring); freed memory that malloc
    holds counts as room.

    Args:
        reserved (int): writable memory that will be mapped without being
            used (the BLAS work buffer, thread stacks), taken from the room
            under RLIMIT_DATA and RLIMIT_AS.
        proc (str): the process' /proc directory (its rlimits are read
            from this process).

    Returns:
        list[MemoryBudget]: one entry per limit in force.
    """
    reusable = malloc_free_bytes() if proc == '/proc/self' else 0
    status = _process_status(proc)
    out = []
    for name, field, what in (
            ('RLIMIT_AS', 'VmSize', 'address space'),
            ('RLIMIT_DATA', 'VmData', 'writable memory')):
        soft, _ = resource.getrlimit(getattr(resource, name))
        if soft == resource.RLIM_INFINITY or field not in status:
            continue
        used = status[field]
        text = f'{name} soft limit {_gb(soft)}, {_gb(used)} of {what} in use'
        if reserved:
            text += (f', {_gb(reserved)} kept for the BLAS work buffer '
                     'and the stacks of new threads')
        out.append(MemoryBudget(soft - used - reserved + reusable, text))
    mem_available = _kv_bytes(_read('/proc/meminfo'), 'MemAvailable', 1024)
    if mem_available is not None:
        out.append(
            MemoryBudget(mem_available + reusable,
                         'MemAvailable of /proc/meminfo'))
    seen = set()
    for directory in _cgroup_dirs(proc):
        if directory in seen:
            continue
        seen.add(directory)
        room = _cgroup_room(directory)
        if room is not None:
            out.append(MemoryBudget(room.available + reusable, room.limit))
    return out


def available_memory(reserved: int = 0,
                     proc: str = '/proc/self') -> MemoryBudget:
    """The memory this process may still allocate: the least room under
    :func:`memory_limits` (see there for the arguments).

    Returns:
        MemoryBudget: bytes (at least 0) and the binding limit; ``limit``
        is ``'none found'`` with an infinite ``available`` when no limit
        could be read.
    """
    limits = memory_limits(reserved, proc)
    if not limits:
        return MemoryBudget(float('inf'), 'none found')
    tightest = min(limits, key=lambda b: b.available)
    return MemoryBudget(max(0, int(tightest.available)), tightest.limit)


def check_memory(need: int,
                 what: str,
                 advice: str = '',
                 reserved: int = 0) -> MemoryBudget:
    """Raise :class:`ClusteringMemoryError` if ``need`` bytes exceed the
    available memory.

    Args:
        need (int): bytes about to be allocated.
        what (str): the work, the subject of the message (``'re-clustering
            1000 features of dim 64 with k1=30, k2=6'``).
        advice (str): appended to the message.
        reserved (int): see :func:`memory_limits`.

    Returns:
        MemoryBudget: the available memory, when it suffices.
    """
    budget = available_memory(reserved)
    if need > budget.available:
        raise ClusteringMemoryError(
            f'{what} needs about {_gb(need)}, but only '
            f'{_gb(budget.available)} are available (limit: '
            f'{budget.limit}){advice}')
    return budget


def format_bytes(num_bytes: float) -> str:
    """``num_bytes`` in GB with two decimals, as the messages write it."""
    return _gb(num_bytes)
