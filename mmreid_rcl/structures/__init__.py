from .reid_data_sample import ReIDDataSample

__all__ = ['ReIDDataSample']
