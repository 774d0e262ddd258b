"""DukeMTMC-reID."""
from mmreid_rcl.registry import DATASETS
from .reid_image_folder import ReIDImageFolder


@DATASETS.register_module()
class DukeMTMCDataset(ReIDImageFolder):
    """DukeMTMC-reID (Zheng et al., ICCV 2017).

    702 training identities (16,522 images); 702 test identities with 2,228
    query and 17,661 gallery images (the gallery adds 408 distractor
    identities that appear in one camera only, as ordinary ids); 8 cameras.
    Layout under ``data_root``, as Market-1501::

        bounding_box_train/    0001_c2_f0046182.jpg ...
        query/
        bounding_box_test/

    Names are read with the anchored
    :data:`~mmreid_rcl.datasets.reid_image_folder.MARKET_STYLE_PATTERN`;
    cameras ``c1``-``c8`` become 0-7. Duke has no junk or id-0 distractor
    images.

    Arguments are those of :class:`ReIDImageFolder` (``data_root``,
    ``split``, ...) and :class:`BaseReIDDataset`.
    """

    METAINFO: dict = dict(dataset_name='DukeMTMC-reID')
    NUM_CAMERAS = 8
    EXAMPLE_NAME = '0001_c2_f0046182.jpg'
