from .unsupervised_reid import UnsupervisedReID, get_reid_model

__all__ = ['UnsupervisedReID', 'get_reid_model']
