"""MSMT17, in its official list layouts or re-packed like Market-1501."""
import os.path as osp
from typing import Dict, List, Set

from mmreid_rcl.registry import DATASETS
from .base_reid_dataset import describe_layout, list_image_files
from .reid_image_folder import ReIDImageFolder


@DATASETS.register_module()
class MSMT17Dataset(ReIDImageFolder):
    """MSMT17 (Wei et al., CVPR 2018).

    1,041 training identities (32,621 images); 3,060 test identities with
    11,659 query and 82,161 gallery images; 15 cameras. Three layouts:

    ``layout='v1'``, the official MSMT17_V1 release::

        train/                 0000/0000_000_01_0303morning_0015_0.jpg ...
        test/                  0000/0000_000_01_0303morning_0008_0.jpg ...
        list_train.txt         lines "0000/0000_000_01_... 0": path, id
        list_val.txt           (train images held out for validation)
        list_query.txt
        list_gallery.txt

    ``layout='v2'``, MSMT17_V2 (faces masked): ``mask_train_v2/`` and
    ``mask_test_v2/`` in place of ``train/`` and ``test/``, same lists.

    In the list layouts the person id is the line's label and the camera is
    the third ``_`` field of the file name, counted from 1 (``01``-``15``
    become 0-14). The train split is ``list_train.txt`` plus
    ``list_val.txt`` (the usual protocol), or the former alone with
    ``train_with_val=False``. Samples are sorted by path.

    ``layout='market'``: a re-packed copy in the Market-1501 layout
    (``bounding_box_train/``, ``query/``, ``bounding_box_test/``) with names
    read by the anchored
    :data:`~mmreid_rcl.datasets.reid_image_folder.MARKET_STYLE_PATTERN`,
    cameras counted from 1.

    Person id 0 is a real identity of MSMT17, not a distractor.

    Args:
        data_root (str): Root folder of the data set.
        split (str): ``'train'``, ``'query'``, ``'gallery'`` or ``'test'``.
            Defaults to ``'train'``.
        layout (str): ``'v1'``, ``'v2'`` or ``'market'``. Defaults to
            ``'v1'``.
        train_with_val (bool): Whether the train split also takes
            ``list_val.txt`` (list layouts only). Defaults to True.
        **kwargs: Arguments of :class:`ReIDImageFolder` and
            :class:`BaseReIDDataset`.
    """

    METAINFO: dict = dict(dataset_name='MSMT17')
    NUM_CAMERAS = 15
    EXAMPLE_NAME = '0000_c1_0000.jpg'
    #: Image folders of the train and test halves in the list layouts.
    IMAGE_DIRS = dict(
        v1=dict(train='train', test='test'),
        v2=dict(train='mask_train_v2', test='mask_test_v2'))
    LIST_FILES = dict(
        train='list_train.txt',
        val='list_val.txt',
        query='list_query.txt',
        gallery='list_gallery.txt')
    LAYOUTS = ('v1', 'v2', 'market')

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 layout: str = 'v1',
                 train_with_val: bool = True,
                 **kwargs) -> None:
        if layout not in self.LAYOUTS:
            raise ValueError(
                f'layout must be one of {self.LAYOUTS}, got {layout!r}.')
        self.layout = layout
        self.train_with_val = train_with_val
        self._folder_cache: Dict[str, Set[str]] = {}
        super().__init__(data_root=data_root, split=split, **kwargs)

    def layout_description(self) -> str:
        """Describe the folders and lists expected under ``data_root``."""
        if self.layout == 'market':
            return super().layout_description()
        dirs = self.IMAGE_DIRS[self.layout]
        entries = {
            f'{dirs["train"]}/': 'train images in one folder per id, e.g. '
            '0000/0000_000_01_0303morning_0015_0.jpg',
            f'{dirs["test"]}/': 'query and gallery images, same naming',
        }
        for name in self.LIST_FILES.values():
            entries[name] = 'lines "<id folder>/<file name> <person id>"'
        return describe_layout(entries)

    def _list_parts(self, split: str) -> List[str]:
        if split == 'train':
            return ['train', 'val'] if self.train_with_val else ['train']
        return [split]

    def _existing_images(self, folder: str) -> Set[str]:
        # One listing per image folder, shared by query and gallery.
        if folder not in self._folder_cache:
            self.require_path(folder)
            self._folder_cache[folder] = set(
                list_image_files(
                    folder,
                    self.extensions,
                    recursive=True,
                    skip_empty_files=self.skip_empty_files))
        return self._folder_cache[folder]

    def _parse_list(self, list_path: str, folder: str) -> List[dict]:
        """Read one list file into samples.

        Args:
            list_path (str): The list file.
            folder (str): The image folder its paths are relative to.

        Returns:
            list[dict]: The samples, in file order.
        """
        self.require_path(list_path, is_dir=False)
        existing = self._existing_images(folder)
        samples = []
        with open(list_path) as f:
            lines = f.read().splitlines()
        for line_no, line in enumerate(lines, 1):
            if not line.strip():
                continue
            fields = line.split()
            where = f'{list_path}, line {line_no}: {line!r}'
            name_fields = osp.basename(fields[0]).split('_')
            try:
                if len(fields) != 2:
                    raise ValueError
                pid = int(fields[1])
                camera = int(name_fields[2])
            except (ValueError, IndexError):
                raise ValueError(
                    f'{self.dataset_name}: malformed list entry in {where}; '
                    'expected "<id folder>/<pid>_<n>_<camera>_..._<k>.jpg '
                    '<person id>", e.g. '
                    '"0000/0000_000_01_0303morning_0015_0.jpg 0".') from None
            img_path = osp.join(folder, fields[0])
            if img_path not in existing:
                if self.skip_empty_files and osp.isfile(img_path):
                    continue  # a zero-byte file, already reported
                raise FileNotFoundError(
                    f'{self.dataset_name}: {img_path!r} listed in {where} '
                    'does not exist (or is not an image file).')
            samples.append(
                dict(
                    img_path=img_path,
                    person_id=pid,
                    camera_id=self.check_camera_id(camera - 1, where)))
        return samples

    def load_split(self, split: str) -> List[dict]:
        """Read one split from its list files or folder.

        Args:
            split (str): ``'train'``, ``'query'`` or ``'gallery'``.

        Returns:
            list[dict]: Samples sorted by path.
        """
        if self.layout == 'market':
            return super().load_split(split)
        dirs = self.IMAGE_DIRS[self.layout]
        folder = osp.join(self.data_root,
                          dirs['train' if split == 'train' else 'test'])
        samples = []
        for part in self._list_parts(split):
            samples += self._parse_list(
                osp.join(self.data_root, self.LIST_FILES[part]), folder)
        return sorted(samples, key=lambda sample: sample['img_path'])

    def load_data_list(self) -> List[dict]:
        self._folder_cache = {}
        try:
            return super().load_data_list()
        finally:
            # The folder listings are only needed while loading.
            self._folder_cache = {}
