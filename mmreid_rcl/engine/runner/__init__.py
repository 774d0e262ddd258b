from .checkpoint import load_local_checkpoint
from .loops import ReIDTrainLoop

__all__ = ['load_local_checkpoint', 'ReIDTrainLoop']
