from .unsupervised_reid import RCL, UnsupervisedReID, get_reid_model

__all__ = ['UnsupervisedReID', 'RCL', 'get_reid_model']
