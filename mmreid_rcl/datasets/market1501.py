"""Market-1501."""
from mmreid_rcl.registry import DATASETS
from .reid_image_folder import ReIDImageFolder


@DATASETS.register_module()
class Market1501Dataset(ReIDImageFolder):
    """Market-1501 (Zheng et al., ICCV 2015).

    751 training identities (12,936 images); 750 test identities with 3,368
    query and 15,913 gallery images; 6 cameras. Layout under ``data_root``::

        bounding_box_train/    0002_c1s1_000451_03.jpg ...
        query/
        bounding_box_test/

    Names are read with the anchored
    :data:`~mmreid_rcl.datasets.reid_image_folder.MARKET_STYLE_PATTERN`:
    person ``-1`` (junk boxes) is dropped, person ``0`` (distractor boxes)
    stays in the gallery only, and cameras ``c1``-``c6`` become 0-5.

    Arguments are those of :class:`ReIDImageFolder` (``data_root``,
    ``split``, ...) and :class:`BaseReIDDataset`.
    """

    METAINFO: dict = dict(dataset_name='Market-1501')
    NUM_CAMERAS = 6
    DISTRACTOR_IDS = (0, )
