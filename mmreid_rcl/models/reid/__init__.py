from .supervised_reid import SupervisedReID
from .unsupervised_reid import RCL, UnsupervisedReID
from .warm_start import WarmStartInit

__all__ = ['UnsupervisedReID', 'RCL', 'SupervisedReID', 'WarmStartInit']
