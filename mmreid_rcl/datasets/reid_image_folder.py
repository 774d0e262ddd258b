"""Generic re-ID dataset: one folder of images per split, ids in names."""
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmreid_rcl.registry import DATASETS
from .base_reid_dataset import (IMG_EXTENSIONS, MAX_NAMED_IMAGES,
                                BaseReIDDataset, describe_layout,
                                list_image_files)

#: The whole Market-1501-style file name: person id (``-1`` for junk),
#: ``_c`` and the camera, an optional ``s`` sequence, then ``_``-separated
#: numbers (a letter may lead, as in DukeMTMC's ``f0046182``) and the
#: extension. Anchored: a copy (``... (1).jpg``) or a stray prefix
#: (``x0001_c1...``) does not match.
MARKET_STYLE_PATTERN = r'^(-1|\d+)_c(\d+)(?:s\d+)?(?:_[A-Za-z]*\d+)*\.\w+$'


#: Person id of images whose names carry none (unlabelled training images):
#: kept (unlike the junk id -1) and never a true identity, so the
#: re-clustering diagnostics (purity, ARI) are skipped for them.
UNKNOWN_ID = -2


@DATASETS.register_module()
class ReIDImageFolder(BaseReIDDataset):
    """A re-ID data set with one image folder per split (Market-1501 style).

    The person id and camera of each image are read from its file name with
    a regular expression: either with the named groups ``pid`` and
    ``camid`` or with exactly two groups, person id first. The match is
    searched in the file name (not the folder); the default,
    :data:`MARKET_STYLE_PATTERN`, is anchored on the whole name
    (``0002_c1s1_000451_03.jpg``, ``-1_c1s1_000401_03.jpg``,
    ``0001_c2_f0046182.jpg``, ``0001_c001_00016450_0.jpg``). Camera numbers
    in names minus ``camera_offset`` give the 0-based camera ids. A pattern
    with only the named group ``camid`` reads unlabelled training images
    (crops from one's own cameras, e.g. ``r'^c(?P<camid>\\d+)_.+\\.jpg$'``):
    each gets the person id :data:`UNKNOWN_ID`, which unsupervised training
    never reads; such a pattern serves the train split only.

    Example config::

        dict(type='ReIDImageFolder', data_root='data/my_reid/',
             split='train',
             split_dirs=dict(train='train', query='probe',
                             gallery='gallery'),
             pattern=r'p(?P<pid>\\d+)_cam(?P<camid>\\d+)',
             camera_offset=0)

    Files with a non-image extension are skipped with a warning; images
    whose names do not match ``pattern`` are an error naming them all.

    Args:
        data_root (str): Root folder of the data set.
        split (str): ``'train'``, ``'query'``, ``'gallery'`` or ``'test'``.
            Defaults to ``'train'``.
        split_dirs (dict, optional): Folder (relative to ``data_root``) of
            each of ``'train'``, ``'query'`` and ``'gallery'``. None takes
            :attr:`SPLIT_DIRS`. Defaults to None.
        pattern (str, optional): Regular expression of file names. None
            takes :attr:`PATTERN`. Defaults to None.
        camera_offset (int, optional): Subtracted from the camera number in
            names, 1 if names count cameras from 1. None takes
            :attr:`CAMERA_OFFSET`. Defaults to None.
        extensions (Sequence[str], optional): Extensions (with the dot) that
            count as images. None takes :data:`IMG_EXTENSIONS`.
            Defaults to None.
        recursive (bool): Also list sub-folders of the split folders.
            Defaults to False.
        **kwargs: Arguments of :class:`BaseReIDDataset` (``pipeline``,
            ``relabel``, ``num_cameras``, ``distractor_ids``,
            ``serialize_data``, ...).
    """

    METAINFO: dict = dict(dataset_name='ReIDImageFolder')
    SPLIT_DIRS: Dict[str, str] = dict(
        train='bounding_box_train', query='query', gallery='bounding_box_test')
    PATTERN: str = MARKET_STYLE_PATTERN
    CAMERA_OFFSET: int = 1
    #: An example file name, shown in the layout description.
    EXAMPLE_NAME: str = '0002_c1s1_000451_03.jpg'

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 split_dirs: Optional[Dict[str, str]] = None,
                 pattern: Optional[str] = None,
                 camera_offset: Optional[int] = None,
                 extensions: Optional[Sequence[str]] = None,
                 recursive: bool = False,
                 **kwargs) -> None:
        self.split_dirs = dict(self.SPLIT_DIRS)
        if split_dirs is not None:
            self.split_dirs.update(split_dirs)
        missing = {'train', 'query', 'gallery'} - set(self.split_dirs)
        if missing:
            raise ValueError(f'split_dirs lacks the folder of {missing}.')
        self.pattern = self.PATTERN if pattern is None else pattern
        self._regex, self._groups = self._compile_pattern(self.pattern)
        self.camera_offset = (
            self.CAMERA_OFFSET if camera_offset is None else camera_offset)
        self.extensions = tuple(
            IMG_EXTENSIONS if extensions is None else extensions)
        self.recursive = recursive
        super().__init__(data_root=data_root, split=split, **kwargs)

    @staticmethod
    def _compile_pattern(pattern: str) -> Tuple[re.Pattern, Tuple]:
        """Compile ``pattern`` and find its person and camera groups."""
        regex = re.compile(pattern)
        if {'pid', 'camid'} <= set(regex.groupindex):
            return regex, ('pid', 'camid')
        if 'camid' in regex.groupindex:
            return regex, (None, 'camid')  # unlabelled images
        if regex.groups == 2:
            return regex, (1, 2)
        raise ValueError(
            f'pattern {pattern!r} must have the named groups "pid" and '
            '"camid", or exactly two groups (person id, camera), or only '
            'the group "camid" (unlabelled training images).')

    def layout_description(self) -> str:
        """Describe the split folders expected under ``data_root``."""
        entries = {
            f'{folder}/': f'{split} images, e.g. {self.EXAMPLE_NAME}'
            for split, folder in self.split_dirs.items()
        }
        entries['(names)'] = (f'matched by "{self.pattern}" '
                              f'(camera offset {self.camera_offset})')
        return describe_layout(entries)

    def split_dir(self, split: str) -> str:
        """The folder of ``split`` ('train', 'query' or 'gallery')."""
        return osp.join(self.data_root, self.split_dirs[split])

    def parse_name(self, path: str) -> Tuple[int, int]:
        """Read the person id and the raw camera number from a file name.

        Args:
            path (str): The image file.

        Returns:
            tuple[int, int]: Person id and camera number as in the name.

        Raises:
            ValueError: The name does not match :attr:`pattern`, or its
                groups are not integers; the message names the file and
                the pattern.
        """
        ids = self._read_name(path)
        if isinstance(ids, str):
            raise ValueError(
                f'{self.dataset_name}: the file name of {path!r} {ids}; '
                f'{self._expected_names()}.')
        return ids

    def _read_name(self, path: str) -> Union[Tuple[int, int], str]:
        """The (person id, camera number) of a name, or what is wrong."""
        match = self._regex.search(osp.basename(path))
        if match is None:
            return 'does not match the pattern'
        if self._groups[0] is None:
            pid, camid = str(UNKNOWN_ID), match.group(self._groups[1])
        else:
            pid, camid = (match.group(g) for g in self._groups)
        try:
            return int(pid), int(camid)
        except (TypeError, ValueError):
            return (f'gives the person id {pid!r} and the camera {camid!r}, '
                    'not two integers')

    def _expected_names(self) -> str:
        return (f'names must match the pattern "{self.pattern}" (e.g. '
                f'{self.EXAMPLE_NAME!r}; set pattern= in the dataset config '
                'for other names)')

    def list_split(self, split: str) -> List[str]:
        """Sorted image files of one split folder.

        Raises:
            FileNotFoundError: The folder is missing.
            ValueError: The folder holds no image.
        """
        folder = self.require_path(self.split_dir(split))
        # Zero-byte files are reported with the other unreadable images.
        files = list_image_files(
            folder,
            self.extensions,
            recursive=self.recursive,
            keep_empty_files=True)
        if not files:
            raise ValueError(
                f'{self.dataset_name}: the {split} folder {folder!r} holds '
                f'no image files (extensions {self.extensions}).')
        return files

    def camera_to_index(self, camera: int, path: str) -> int:
        """Turn the camera number of a name into a checked 0-based id.

        Args:
            camera (int): The camera number as written in the name.
            path (str): The file, for error messages.

        Returns:
            int: The 0-based camera id.
        """
        return self.check_camera_id(camera - self.camera_offset, path)

    def load_split(self, split: str) -> List[dict]:
        """Parse the names of one split folder.

        Args:
            split (str): ``'train'``, ``'query'`` or ``'gallery'``.

        Returns:
            list[dict]: Samples in sorted file order.

        Raises:
            ValueError: Names that do not fit :attr:`pattern`, all in one
                message (the first ones named, the others counted).
        """
        if self._groups[0] is None and split != 'train':
            raise ValueError(
                f'{self.dataset_name}: the pattern {self.pattern!r} reads no '
                f'person id, so it can only serve the train split of '
                f'unlabelled images, not {split!r}: evaluation needs the '
                'ids of query and gallery images (use a pattern with a '
                '"pid" group there).')
        samples, bad = [], []
        for path in self.list_split(split):
            ids = self._read_name(path)
            if isinstance(ids, str):
                bad.append(f'{osp.basename(path)!r} ({ids})')
                continue
            pid, camera = ids
            if pid in self.JUNK_IDS:
                # Junk names may carry meaningless cameras; skip the check.
                camera_id = max(camera - self.camera_offset, 0)
            else:
                camera_id = self.camera_to_index(camera, path)
            samples.append(
                dict(img_path=path, person_id=pid, camera_id=camera_id))
        if bad:
            more = (f' and {len(bad) - MAX_NAMED_IMAGES} more'
                    if len(bad) > MAX_NAMED_IMAGES else '')
            raise ValueError(
                f'{self.dataset_name}: {len(bad)} file name(s) in '
                f'{self.split_dir(split)!r} do not fit: '
                f'{", ".join(bad[:MAX_NAMED_IMAGES])}{more}; '
                f'{self._expected_names()}.')
        return samples
