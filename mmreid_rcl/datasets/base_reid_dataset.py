"""The base class of every re-ID dataset and the folder-listing helpers."""
import logging
import os
import os.path as osp
import pickle
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.dataset import BaseDataset, force_full_init
from mmengine.logging import print_log

from .id_subset import apply_id_subset, check_id_subset
from .samplers.seeded_draws import seeded_global_rngs

SPLITS = ('train', 'query', 'gallery', 'test')
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.ppm', '.pgm', '.tif',
                  '.tiff', '.webp')
#: The problem of a zero-byte image (see :func:`image_file_problem`).
EMPTY_IMAGE = 'empty, 0 bytes'
#: Unreadable images named in an error message; the others are counted.
MAX_NAMED_IMAGES = 10
# path -> (size, mtime) of the images decoded fine in this process: the
# train split is built twice (training and clustering loaders), and a file
# is decoded again only when it changed.
_DECODED: Dict[str, Tuple[int, int]] = {}


class UnreadableImagesError(ValueError):
    """Image files of a data set that cannot be read (empty, truncated,
    corrupt): raised once, naming them, when the data set is built."""


def image_file_problem(path: str, decode: bool = True) -> Optional[str]:
    """Why an image file cannot be read, or None when it can.

    Args:
        path (str): The image file.
        decode (bool): Decode it as the loading transform does (OpenCV,
            colour). Without decoding only a missing or zero-byte file is
            found. Defaults to True.

    Returns:
        str | None: :data:`EMPTY_IMAGE`, another short reason, or None.
    """
    try:
        stat = os.stat(path)
    except OSError as err:
        return f'cannot be opened: {err.strerror}'
    if stat.st_size == 0:
        return EMPTY_IMAGE
    if not decode:
        return None
    key = (stat.st_size, stat.st_mtime_ns)
    if _DECODED.get(path) == key:
        return None
    try:
        with open(path, 'rb') as f:
            content = f.read()
        img = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_COLOR)
    except (OSError, cv2.error) as err:
        return f'cannot be read: {err}'
    # OpenCV returns None for a truncated or corrupt file, as in loading.
    if img is None or img.size == 0:
        return 'cannot be decoded: truncated or corrupt'
    _DECODED[path] = key
    return None


def find_unreadable_images(paths: Sequence[str],
                           decode: bool = True,
                           num_threads: Optional[int] = None
                           ) -> List[Tuple[str, str]]:
    """The images of ``paths`` that cannot be read, with the reasons.

    Decoding runs in threads (OpenCV releases the GIL): about 2 s for the
    7,239 small JPEGs of CUHK03's train split on 2 busy cores, a fraction
    of that for files already decoded unchanged in this process.

    Args:
        paths (Sequence[str]): Image files.
        decode (bool): Decode each (see :func:`image_file_problem`).
            Defaults to True.
        num_threads (int, optional): Threads decoding; None takes
            ``min(8, cpu count)``.

    Returns:
        list[tuple[str, str]]: ``(path, reason)`` in the order of ``paths``.
    """
    if num_threads is None:
        num_threads = min(8, os.cpu_count() or 1)
    if decode and num_threads > 1 and len(paths) > 1:
        with ThreadPoolExecutor(num_threads) as pool:
            problems = list(pool.map(image_file_problem, paths))
    else:
        problems = [image_file_problem(p, decode) for p in paths]
    return [(p, why) for p, why in zip(paths, problems) if why is not None]


def describe_unreadable_images(problems: Sequence[Tuple[str, str]],
                               where: str) -> str:
    """``'N image file(s) of WHERE cannot be read: a (why), ...'``."""
    named = ', '.join(f'{path} ({why})'
                      for path, why in problems[:MAX_NAMED_IMAGES])
    more = (f' and {len(problems) - MAX_NAMED_IMAGES} more'
            if len(problems) > MAX_NAMED_IMAGES else '')
    return (f'{len(problems)} image file(s) of {where} cannot be read: '
            f'{named}{more}.')


def list_image_files(dir_path: str,
                     extensions: Sequence[str] = IMG_EXTENSIONS,
                     recursive: bool = False,
                     skip_empty_files: bool = False,
                     keep_empty_files: bool = False) -> List[str]:
    """List the image files of a folder in sorted order.

    Files whose extension is not an image extension (``Thumbs.db``, a
    ``readme.txt``) are skipped with one logged warning per folder. A
    zero-byte image is a truncated copy of the data set: it is an error
    (:class:`UnreadableImagesError`) unless ``skip_empty_files`` or
    ``keep_empty_files`` is set.

    Args:
        dir_path (str): The folder to list.
        extensions (Sequence[str]): Lower-case file extensions, with the
            dot, that count as images. Defaults to :data:`IMG_EXTENSIONS`.
        recursive (bool): Whether to descend into sub-folders.
            Defaults to False.
        skip_empty_files (bool): Skip zero-byte images with a warning
            instead of raising. Defaults to False.
        keep_empty_files (bool): List zero-byte images like the others:
            the caller reports them with the other unreadable images (as
            :meth:`BaseReIDDataset.check_images` does). Defaults to False.

    Returns:
        list[str]: Paths (``dir_path`` joined with the relative path) of the
        image files, sorted by their path relative to ``dir_path``.

    Raises:
        FileNotFoundError: ``dir_path`` is not a folder.
        UnreadableImagesError: A zero-byte image was found (the message
            lists them).
    """
    if not osp.isdir(dir_path):
        raise FileNotFoundError(f'Image folder {dir_path!r} does not exist.')
    extensions = tuple(ext.lower() for ext in extensions)
    images, others, empty = [], [], []
    pending = ['']
    while pending:
        rel_dir = pending.pop()
        with os.scandir(osp.join(dir_path, rel_dir)) as entries:
            for entry in entries:
                rel_path = osp.join(rel_dir, entry.name)
                if entry.is_dir():
                    if recursive:
                        pending.append(rel_path)
                    continue
                if not entry.name.lower().endswith(extensions):
                    others.append(rel_path)
                elif not keep_empty_files and entry.stat().st_size == 0:
                    empty.append(rel_path)
                else:
                    images.append(rel_path)
    if others:
        others.sort()
        print_log(
            f'Skipped {len(others)} non-image file(s) in {dir_path!r}, '
            f'e.g. {others[:3]}.',
            logger='current',
            level=logging.WARNING)
    if empty:
        message = describe_unreadable_images(
            [(osp.join(dir_path, p), EMPTY_IMAGE) for p in sorted(empty)],
            f'the folder {dir_path!r}')
        if not skip_empty_files:
            raise UnreadableImagesError(
                message + ' Re-copy them, or pass skip_empty_files=True to '
                'leave zero-byte images out.')
        print_log(
            'Skipped: ' + message, logger='current', level=logging.WARNING)
    return [osp.join(dir_path, p) for p in sorted(images)]


class BaseReIDDataset(BaseDataset):
    """Base class of re-ID datasets: one split of a data set root.

    Subclasses implement :meth:`load_split` (the raw samples of ``'train'``,
    ``'query'`` or ``'gallery'``) and :meth:`layout_description`; this class
    combines query and gallery for ``'test'``, drops junk and distractor
    images, checks camera ids, optionally relabels and records the split's
    statistics in :attr:`metainfo`.

    A sample (data info) is a dict with

    - ``img_path`` (str): the image file, joined with ``data_root``.
    - ``person_id`` (int): the identity.
    - ``camera_id`` (int): the camera, 0-based.
    - ``is_query`` (bool): True for query images, False otherwise.

    and :class:`~mmengine.dataset.BaseDataset` adds ``sample_idx``.

    Person ids stay the raw ids of the data set: unsupervised training never
    reads them (they feed diagnostics and evaluation only), and raw ids keep
    query and gallery ids comparable. Pass ``relabel=True`` on the train
    split for contiguous ids ``0..n-1`` (sorted raw ids, in order).

    Junk images (person id -1) are always dropped. Distractors (the ids in
    ``distractor_ids``, e.g. ``0`` of Market-1501) are dropped from train
    and query and kept in the gallery, where they act as negatives.

    ``'test'`` is the query samples followed by the gallery samples; use the
    ``is_query`` flag, never the counts, to tell them apart.

    After initialisation :attr:`metainfo` holds ``dataset_name``, ``split``,
    ``num_ids``, ``num_cameras`` (distinct cameras seen in the split),
    ``num_images`` and, for ``'test'``, ``num_query`` and ``num_gallery``.
    With ``lazy_init=True`` these statistics appear after :meth:`full_init`.

    Args:
        data_root (str): Root folder of the data set.
        split (str): ``'train'``, ``'query'``, ``'gallery'`` or ``'test'``.
            Defaults to ``'train'``.
        pipeline (Sequence[dict | Callable]): Data transforms.
            Defaults to ().
        relabel (bool): Map person ids to ``0..n-1``; train split only.
            Defaults to False.
        num_cameras (int, optional): Camera ids must be below this value;
            None takes the class default :attr:`NUM_CAMERAS` (None: no upper
            bound). Defaults to None.
        distractor_ids (Sequence[int], optional): Ids kept in the gallery
            only; None takes the class default :attr:`DISTRACTOR_IDS`.
            Defaults to None.
        skip_empty_files (bool): Skip zero-byte image files with a warning
            instead of raising. Defaults to False.
        verify_images (bool, optional): Decode every image when the data
            set is built, so that an unreadable one (truncated, corrupt)
            is reported at once, with all the others, instead of when it
            is first read. None: on for the train split (about 2 s for
            CUHK03's 7,239 images), off for the others. Missing and
            zero-byte images are always reported. Defaults to None.
        id_subset (dict, optional): Keep some identities of the train
            split only: ``dict(fraction=0.5, seed=0, part='labelled')``
            (the ids whose seeded hash falls below ``fraction``),
            ``part='unlabelled'`` (the others), or ``dict(id_file=PATH)``
            (the raw ids listed in a file, one a line). Applied after junk
            and distractors are dropped and before ``relabel``; see
            :mod:`mmreid_rcl.datasets.id_subset`. Defaults to None.
        test_mode (bool, optional): Passed to ``BaseDataset``; None means
            ``split != 'train'``. Defaults to None.
        **kwargs: Other arguments of :class:`~mmengine.dataset.BaseDataset`
            (``serialize_data``, ``lazy_init``, ``indices``, ``metainfo``,
            ...).
    """

    METAINFO: dict = dict(dataset_name='re-ID')
    #: Number of cameras of the data set (None: unknown, no upper bound).
    NUM_CAMERAS: Optional[int] = None
    #: Person ids that mean "not a person / ignore": dropped everywhere.
    JUNK_IDS: Tuple[int, ...] = (-1, )
    #: Person ids that are distractors: kept in the gallery only.
    DISTRACTOR_IDS: Tuple[int, ...] = ()

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 pipeline: Sequence = (),
                 relabel: bool = False,
                 num_cameras: Optional[int] = None,
                 distractor_ids: Optional[Sequence[int]] = None,
                 skip_empty_files: bool = False,
                 verify_images: Optional[bool] = None,
                 id_subset: Optional[dict] = None,
                 test_mode: Optional[bool] = None,
                 **kwargs) -> None:
        if split not in SPLITS:
            raise ValueError(f'split must be one of {SPLITS}, got {split!r}.')
        if relabel and split != 'train':
            raise ValueError('relabel=True is only meaningful for the train '
                             'split: query and gallery must keep ids that '
                             f'match each other (got split={split!r}).')
        self.split = split
        self.relabel = relabel
        self.num_cameras = (
            self.NUM_CAMERAS if num_cameras is None else num_cameras)
        self.distractor_ids = tuple(
            self.DISTRACTOR_IDS if distractor_ids is None else distractor_ids)
        self.skip_empty_files = skip_empty_files
        self.verify_images = (
            split == 'train' if verify_images is None else bool(verify_images))
        self.id_subset = check_id_subset(id_subset, split)
        if test_mode is None:
            test_mode = split != 'train'
        super().__init__(
            data_root=data_root,
            pipeline=list(pipeline),
            test_mode=test_mode,
            **kwargs)

    # ------------------------------------------------------------------
    # To implement in subclasses.
    def load_split(self, split: str) -> List[dict]:
        """Read the raw samples of one split.

        Args:
            split (str): ``'train'``, ``'query'`` or ``'gallery'``.

        Returns:
            list[dict]: Samples with ``img_path``, ``person_id`` and
            ``camera_id`` (already 0-based), in a deterministic order. Junk
            and distractor filtering happens in the caller.
        """
        raise NotImplementedError

    def layout_description(self) -> str:
        """Describe the folders and files expected under ``data_root``.

        Returns:
            str: A multi-line description used in error messages.
        """
        return '  (see the dataset class documentation)'

    # ------------------------------------------------------------------
    @property
    def dataset_name(self) -> str:
        """str: The data set's display name."""
        return self._metainfo.get('dataset_name', type(self).__name__)

    def check_data_root(self) -> None:
        """Raise a clear error when ``data_root`` is not a folder.

        Raises:
            FileNotFoundError: Naming the root and the expected layout.
        """
        if not self.data_root or not osp.isdir(self.data_root):
            raise FileNotFoundError(
                f'{self.dataset_name} data root {self.data_root!r} does not '
                'exist or is not a folder. Expected layout under it:\n'
                f'{self.layout_description()}')

    def require_path(self, path: str, is_dir: bool = True) -> str:
        """Return ``path`` or raise naming it and the expected layout.

        Args:
            path (str): A folder or file inside ``data_root``.
            is_dir (bool): Whether ``path`` must be a folder (else a file).
                Defaults to True.

        Returns:
            str: ``path``.

        Raises:
            FileNotFoundError: ``path`` is missing.
        """
        exists = osp.isdir(path) if is_dir else osp.isfile(path)
        if not exists:
            kind = 'folder' if is_dir else 'file'
            raise FileNotFoundError(
                f'{self.dataset_name}: the {kind} {path!r} does not exist. '
                f'Expected layout under {self.data_root!r}:\n'
                f'{self.layout_description()}')
        return path

    def check_camera_id(self, camera_id: int, source: str) -> int:
        """Check that a 0-based camera id is in range.

        Args:
            camera_id (int): The 0-based camera id.
            source (str): The file (or list line) it comes from, for the
                error message.

        Returns:
            int: ``camera_id``.

        Raises:
            ValueError: The camera id is negative or not below
                ``num_cameras``.
        """
        if camera_id < 0 or (self.num_cameras is not None
                             and camera_id >= self.num_cameras):
            upper = ('' if self.num_cameras is None else
                     f' and below num_cameras={self.num_cameras}')
            raise ValueError(
                f'{self.dataset_name}: camera id {camera_id} (0-based) of '
                f'{source!r} is out of range: it must be >= 0{upper}. Check '
                'the camera offset / the number of cameras of the data set.')
        return camera_id

    # ------------------------------------------------------------------
    def load_data_list(self) -> List[dict]:
        """Load the samples of :attr:`split`.

        Returns:
            list[dict]: The samples; for ``'test'`` the query samples
            followed by the gallery samples.
        """
        self.check_data_root()
        parts = ['query', 'gallery'] if self.split == 'test' else [self.split]
        junk = set(self.JUNK_IDS)
        distractors = set(self.distractor_ids)
        data_list = []
        for part in parts:
            samples = self.load_split(part)
            if not samples:
                raise ValueError(
                    f'{self.dataset_name}: the {part} split under '
                    f'{self.data_root!r} holds no images. Expected layout:\n'
                    f'{self.layout_description()}')
            kept = []
            for sample in samples:
                pid = sample['person_id']
                if pid in junk:
                    continue
                if pid in distractors and part != 'gallery':
                    continue
                kept.append(
                    dict(
                        img_path=sample['img_path'],
                        person_id=int(pid),
                        camera_id=int(sample['camera_id']),
                        is_query=part == 'query'))
            if not kept:
                raise ValueError(
                    f'{self.dataset_name}: the {part} split under '
                    f'{self.data_root!r} holds only junk or distractor '
                    'images.')
            data_list.extend(kept)
        if self.id_subset is not None:
            data_list = apply_id_subset(data_list, self.id_subset,
                                        self.dataset_name)
        data_list = self.check_images(data_list)
        if self.relabel:
            # Sorted raw ids give the same labels on every run and rank.
            raw_ids = sorted({info['person_id'] for info in data_list})
            mapping = {pid: label for label, pid in enumerate(raw_ids)}
            for info in data_list:
                info['person_id'] = mapping[info['person_id']]
        return data_list

    def check_images(self, data_list: List[dict]) -> List[dict]:
        """Report every unreadable image of the split in one error.

        Missing and zero-byte files are always found; with
        :attr:`verify_images` every image is also decoded. Zero-byte files
        are left out with a warning when :attr:`skip_empty_files` is set.

        Args:
            data_list (list[dict]): The samples to serve.

        Returns:
            list[dict]: ``data_list``, without skipped zero-byte images.

        Raises:
            UnreadableImagesError: Naming the first
                :data:`MAX_NAMED_IMAGES` unreadable files and the count.
        """
        start = time.perf_counter()
        problems = find_unreadable_images(
            [info['img_path'] for info in data_list], self.verify_images)
        elapsed = time.perf_counter() - start
        if self.verify_images:
            print_log(
                f'{self.dataset_name}: decoded the {len(data_list)} '
                f'{self.split} images to check them in {elapsed:.1f} s '
                '(verify_images=False skips this)',
                logger='current',
                level=logging.INFO if elapsed >= 1 else logging.DEBUG)
        where = (f'the {self.split} split of {self.dataset_name} under '
                 f'{self.data_root!r}')
        empty = {path for path, why in problems if why == EMPTY_IMAGE}
        if empty and self.skip_empty_files:
            print_log(
                'Skipped: ' + describe_unreadable_images(
                    [p for p in problems if p[0] in empty], where),
                logger='current',
                level=logging.WARNING)
            data_list = [i for i in data_list if i['img_path'] not in empty]
            problems = [p for p in problems if p[0] not in empty]
        if problems:
            hint = ' Re-copy or delete them'
            if any(why == EMPTY_IMAGE for _, why in problems):
                hint += (', or set skip_empty_files=True to leave zero-byte '
                         'images out')
            raise UnreadableImagesError(
                describe_unreadable_images(problems, where) + hint + '.')
        return data_list

    def full_init(self) -> None:
        """Load the split, then record its statistics in the metainfo."""
        if self._fully_initialized:
            return
        super().full_init()
        self._refresh_stats()

    def prepare_data(self, idx) -> Any:
        """Run the pipeline on sample ``idx``; never return ``None``.

        mmengine's dataset replaces a sample whose pipeline returns ``None``
        by a random other one (drawn with the global RNG), which would break
        the identities x instances structure of a batch. A re-ID pipeline
        has no reason to drop a sample, so this is an error naming the image.

        An index that carries a draw seed (:class:`DrawIndex`, yielded by
        the identity sampler) runs the pipeline with the global RNGs seeded
        from it, so its random transforms are reproducible.
        """
        draw_seed = getattr(idx, 'draw_seed', None)
        if draw_seed is None:
            data = super().prepare_data(idx)
        else:
            with seeded_global_rngs(draw_seed):
                data = super().prepare_data(int(idx))
        if data is None:
            info = self.get_data_info(idx)
            raise RuntimeError(
                f'the pipeline returned None for sample {idx} '
                f'({info.get("img_path")}): re-ID pipelines must not drop '
                'samples')
        return data

    def _refresh_stats(self) -> None:
        """Record the statistics of the served samples in the metainfo."""
        # Computed after filtering, ``indices`` and subsets, so the numbers
        # describe what the dataset really serves.
        person_ids = self.get_person_ids()
        camera_ids = self.get_camera_ids()
        stats = dict(
            split=self.split,
            num_ids=int(np.unique(person_ids).size),
            num_cameras=int(np.unique(camera_ids).size),
            num_images=int(person_ids.size))
        if self.split == 'test':
            is_query = self.get_query_flags()
            stats.update(
                num_query=int(is_query.sum()),
                num_gallery=int((~is_query).sum()))
        self._metainfo.update(stats)

    def get_subset_(self, indices) -> None:
        """Keep only ``indices`` (see ``BaseDataset``); refresh the stats."""
        super().get_subset_(indices)
        self._refresh_stats()

    def get_subset(self, indices) -> 'BaseReIDDataset':
        """A copy with ``indices`` only (see ``BaseDataset``), own stats."""
        subset = super().get_subset(indices)
        subset._refresh_stats()
        return subset

    def _collect(self, key: str) -> list:
        """Read one field of every sample.

        When ``serialize_data`` is on, ``data_list`` is empty and the
        samples live as pickles in ``data_bytes``: unpickle each without
        the deep copy ``get_data_info`` makes.
        """
        if not self.serialize_data:
            return [info[key] for info in self.data_list]
        ends = self.data_address.tolist()
        starts = [0] + ends[:-1]
        buffer = memoryview(self.data_bytes)
        return [
            pickle.loads(buffer[start:end])[key]
            for start, end in zip(starts, ends)
        ]

    @force_full_init
    def get_person_ids(self) -> np.ndarray:
        """Person ids of all samples, in sample order.

        Returns:
            np.ndarray: Shape (N, ), int64.
        """
        return np.asarray(self._collect('person_id'), dtype=np.int64)

    @force_full_init
    def get_camera_ids(self) -> np.ndarray:
        """0-based camera ids of all samples, in sample order.

        Returns:
            np.ndarray: Shape (N, ), int64.
        """
        return np.asarray(self._collect('camera_id'), dtype=np.int64)

    @force_full_init
    def get_query_flags(self) -> np.ndarray:
        """``is_query`` flags of all samples, in sample order.

        Returns:
            np.ndarray: Shape (N, ), bool.
        """
        return np.asarray(self._collect('is_query'), dtype=bool)

    def summary(self) -> str:
        """A table of ids, images and cameras of the loaded split.

        Returns:
            str: The table; ``'test'`` shows query and gallery rows.
        """
        person_ids = self.get_person_ids()
        camera_ids = self.get_camera_ids()
        if self.split == 'test':
            is_query = self.get_query_flags()
            rows = [('query', is_query), ('gallery', ~is_query)]
        else:
            rows = [(self.split, np.ones(person_ids.size, dtype=bool))]
        lines = [
            f'{self.dataset_name} ({self.data_root})',
            f'  {"split":<8}| {"# ids":>7} | {"# images":>9} | '
            f'{"# cameras":>9}', '  ' + '-' * 42
        ]
        for name, mask in rows:
            lines.append(f'  {name:<8}| {np.unique(person_ids[mask]).size:>7}'
                         f' | {int(mask.sum()):>9} | '
                         f'{np.unique(camera_ids[mask]).size:>9}')
        return '\n'.join(lines)

    def __repr__(self) -> str:
        if not self._fully_initialized:
            return (f'{type(self).__name__}(data_root={self.data_root!r}, '
                    f'split={self.split!r}, not loaded yet)')
        return f'{type(self).__name__}:\n{self.summary()}'


def describe_layout(entries: Dict[str, str]) -> str:
    """Format expected folder/file entries for error messages.

    Args:
        entries (dict[str, str]): Path inside the root -> what it holds.

    Returns:
        str: One indented line per entry.
    """
    width = max(len(name) for name in entries)
    return '\n'.join(f'  {name:<{width}}  {what}'
                     for name, what in entries.items())
