"""Re-ID datasets, their transforms and samplers."""
from .base_reid_dataset import BaseReIDDataset, list_image_files
from .cuhk03 import CUHK03Dataset
from .dukemtmc import DukeMTMCDataset
from .market1501 import Market1501Dataset
from .msmt17 import MSMT17Dataset
from .personx import PersonXDataset
from .reid_image_folder import ReIDImageFolder
from .samplers import *  # noqa: F401,F403
from .synthetic import SyntheticReIDDataset, generate_synthetic_reid
from .transforms import *  # noqa: F401,F403
from .veri776 import VeRi776Dataset

__all__ = [
    'SyntheticReIDDataset', 'generate_synthetic_reid', 'BaseReIDDataset',
    'list_image_files', 'ReIDImageFolder', 'Market1501Dataset',
    'DukeMTMCDataset', 'CUHK03Dataset', 'PersonXDataset', 'MSMT17Dataset',
    'VeRi776Dataset'
]
