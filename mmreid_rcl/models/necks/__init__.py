from .gap import GlobalAveragePooling
from .gem import GeneralizedMeanPooling
from .gmp import GlobalMaxPooling
from .reid_neck import ReIDNeck

__all__ = [
    'GeneralizedMeanPooling', 'GlobalAveragePooling', 'GlobalMaxPooling',
    'ReIDNeck'
]
