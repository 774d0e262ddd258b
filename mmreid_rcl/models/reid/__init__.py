from .supervised_reid import SupervisedReID
from .unsupervised_reid import RCL, UnsupervisedReID, get_reid_model
from .warm_start import WarmStartInit

__all__ = [
    'UnsupervisedReID', 'RCL', 'get_reid_model', 'SupervisedReID',
    'WarmStartInit'
]
