"""CUHK03 re-packed in the Market-1501 layout."""
from mmreid_rcl.registry import DATASETS
from .reid_image_folder import ReIDImageFolder


@DATASETS.register_module()
class CUHK03Dataset(ReIDImageFolder):
    """CUHK03 (Li et al., CVPR 2014) in the Market-1501 layout.

    CUHK03 pairs two camera views per person; re-packed copies (the
    "new protocol" of Zhong et al., CVPR 2017, or the "labeled" boxes of
    ``../shared/data/cuhk03_labeled``) use the Market-1501 layout under
    ``data_root``::

        bounding_box_train/    0000_c1s1_000000_00.jpg ...
        query/
        bounding_box_test/

    Names are read with the anchored
    :data:`~mmreid_rcl.datasets.reid_image_folder.MARKET_STYLE_PATTERN`;
    cameras ``c1`` and ``c2`` become 0 and 1. Person id 0 is a real
    identity here, not a distractor.

    Arguments are those of :class:`ReIDImageFolder` (``data_root``: the
    folder of one box type, ``split``, ...) and :class:`BaseReIDDataset`.
    """

    METAINFO: dict = dict(dataset_name='CUHK03')
    NUM_CAMERAS = 2
    EXAMPLE_NAME = '0000_c1s1_000000_00.jpg'
