from .cluster_memory import ClusterMemory
from .memory_update import (BaseMemoryUpdate, CentralMemoryUpdate,
                            HardMemoryUpdate, HPSMemoryUpdate,
                            MeanMemoryUpdate, WarmupMemoryUpdate)
from .prototype_init import CSAPrototypeInit, MeanPrototypeInit, cluster_means

__all__ = [
    'ClusterMemory', 'BaseMemoryUpdate', 'MeanMemoryUpdate',
    'HardMemoryUpdate', 'CentralMemoryUpdate', 'HPSMemoryUpdate',
    'WarmupMemoryUpdate',
    'MeanPrototypeInit', 'CSAPrototypeInit', 'cluster_means'
]
