from .base_reid import BaseReID
from .rcl import RCL
from .supervised_reid import SupervisedReID
from .unsupervised_reid import UnsupervisedReID
from .warm_start import WarmStartInit

__all__ = [
    'BaseReID', 'UnsupervisedReID', 'RCL', 'SupervisedReID', 'WarmStartInit'
]
