"""VeRi-776 (vehicle re-ID)."""
from mmreid_rcl.registry import DATASETS
from .reid_image_folder import ReIDImageFolder


@DATASETS.register_module()
class VeRi776Dataset(ReIDImageFolder):
    """VeRi-776 (Liu et al., ICME 2016 / ECCV 2016), vehicle re-ID.

    576 training vehicles (37,778 images); 200 test vehicles with 1,678
    query and 11,579 gallery images; 20 cameras. Layout under
    ``data_root``::

        image_train/    0001_c001_00016450_0.jpg ...
        image_query/
        image_test/     (the gallery)

    Names are read with the anchored
    :data:`~mmreid_rcl.datasets.reid_image_folder.MARKET_STYLE_PATTERN`:
    vehicle id, then the camera ``c001``-``c020``, which becomes 0-19. The
    ``person_id`` field holds the vehicle id.

    Arguments are those of :class:`ReIDImageFolder` (``data_root``,
    ``split``, ...) and :class:`BaseReIDDataset`.
    """

    METAINFO: dict = dict(dataset_name='VeRi-776')
    SPLIT_DIRS = dict(
        train='image_train', query='image_query', gallery='image_test')
    NUM_CAMERAS = 20
    EXAMPLE_NAME = '0001_c001_00016450_0.jpg'
