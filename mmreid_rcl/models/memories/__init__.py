from .cluster_memory import ClusterMemory
from .memory_update import (BaseMemoryUpdate, CentralMemoryUpdate,
                            HardMemoryUpdate, MeanMemoryUpdate, cluster_trust,
                            hard_positive_picks, pick_per_prototype)
from .prototype_init import (MeanPrototypeInit, cluster_means,
                             cluster_sample_aggregation)

__all__ = [
    'ClusterMemory', 'BaseMemoryUpdate', 'MeanMemoryUpdate',
    'HardMemoryUpdate', 'CentralMemoryUpdate', 'hard_positive_picks',
    'cluster_trust', 'pick_per_prototype', 'MeanPrototypeInit',
    'cluster_means', 'cluster_sample_aggregation'
]
