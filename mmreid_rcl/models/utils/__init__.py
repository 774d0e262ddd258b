from .data_preprocessor import ReIDDataPreprocessor
from .device import module_device

__all__ = ['ReIDDataPreprocessor', 'module_device']
