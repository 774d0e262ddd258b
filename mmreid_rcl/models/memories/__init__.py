from .cluster_memory import ClusterMemory
from .memory_update import BaseMemoryUpdate, HardMemoryUpdate, MeanMemoryUpdate
from .prototype_init import MeanPrototypeInit, cluster_means

__all__ = [
    'ClusterMemory', 'BaseMemoryUpdate', 'MeanMemoryUpdate',
    'HardMemoryUpdate', 'MeanPrototypeInit', 'cluster_means'
]
