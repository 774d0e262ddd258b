"""PersonX (synthetic persons)."""
from typing import Dict, List, Optional, Sequence

from mmreid_rcl.registry import DATASETS
from .reid_image_folder import ReIDImageFolder


@DATASETS.register_module()
class PersonXDataset(ReIDImageFolder):
    """PersonX (Sun and Zheng, CVPR 2019), synthetic persons.

    The subset used by unsupervised re-ID: 410 training identities (9,840
    images); 856 test identities with 5,136 query and 30,816 gallery
    images; 6 cameras. Layout under ``data_root``, as Market-1501::

        bounding_box_train/    0001_c3s1_0001.jpg ...
        query/
        bounding_box_test/

    Names are read with the anchored
    :data:`~mmreid_rcl.datasets.reid_image_folder.MARKET_STYLE_PATTERN`.
    The camera numbers of PersonX are not contiguous (3, 4, 8, 10, 11 and
    12 in the released subset), so they are mapped to ``0..n-1`` in the
    order of the sorted set of camera numbers found in all three split
    folders. Every split of one root gets the same mapping, whichever split
    is loaded.

    Args:
        data_root (str): Root folder of the data set.
        split (str): ``'train'``, ``'query'``, ``'gallery'`` or ``'test'``.
            Defaults to ``'train'``.
        camera_numbers (Sequence[int], optional): The camera numbers (as in
            the names) in the order of their 0-based ids; fixes the mapping
            instead of reading it from the folders. Defaults to None.
        **kwargs: Arguments of :class:`ReIDImageFolder` and
            :class:`BaseReIDDataset`.
    """

    METAINFO: dict = dict(dataset_name='PersonX')
    NUM_CAMERAS = 6
    CAMERA_OFFSET = 0
    EXAMPLE_NAME = '0001_c3s1_0001.jpg'

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 camera_numbers: Optional[Sequence[int]] = None,
                 **kwargs) -> None:
        self.camera_numbers = (None if camera_numbers is None else
                               [int(c) for c in camera_numbers])
        self._camera_map: Optional[Dict[int, int]] = None
        self._listing: Dict[str, List[str]] = {}
        super().__init__(data_root=data_root, split=split, **kwargs)

    def list_split(self, split: str) -> List[str]:
        # Reuse the listing made while building the camera map.
        if split not in self._listing:
            self._listing[split] = super().list_split(split)
        return self._listing[split]

    def build_camera_map(self) -> Dict[int, int]:
        """Map camera numbers of names to 0-based ids.

        Returns:
            dict[int, int]: Camera number -> camera id.
        """
        numbers = self.camera_numbers
        if numbers is None:
            found = set()
            for split in ('train', 'query', 'gallery'):
                for path in self.list_split(split):
                    pid, camera = self.parse_name(path)
                    if pid not in self.JUNK_IDS:
                        found.add(camera)
            numbers = sorted(found)
        return {number: index for index, number in enumerate(numbers)}

    def camera_to_index(self, camera: int, path: str) -> int:
        if camera not in self._camera_map:
            raise ValueError(
                f'{self.dataset_name}: camera number {camera} of {path!r} '
                f'is not one of the known cameras '
                f'{sorted(self._camera_map)}.')
        return self.check_camera_id(self._camera_map[camera], path)

    def load_data_list(self) -> List[dict]:
        self.check_data_root()
        self._listing = {}
        try:
            self._camera_map = self.build_camera_map()
            return super().load_data_list()
        finally:
            # The file lists are only needed while loading.
            self._listing = {}
