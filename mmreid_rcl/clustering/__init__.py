"""Pseudo-label generation: k-reciprocal Jaccard distance, DBSCAN and the
registered label generators."""
from mmreid_rcl.utils.threads import faiss_num_threads
from .base_label_generator import BaseLabelGenerator, Neighbours
from .dbscan import dbscan_labels, relabel_by_first_member
from .dbscan_label_generator import DBSCANLabelGenerator
from .diagnostics import cluster_quality
from .jaccard_distance import (as_unit_features, jaccard_distance,
                               k_reciprocal_encoding)
from .k_reciprocal import k_reciprocal_sets
from .knn import (AutoKnn, BaseKnn, ExactKnn, HNSWKnn, IVFKnn, PCAKnn,
                  build_knn, camera_aware_knn, knn_search,
                  sharded_camera_aware_knn, sharded_knn_search)
from .labels import contiguous_labels
from .memory import (ClusteringMemoryError, available_memory,
                     clustering_memory, estimate_clustering_memory)

__all__ = [
    'AutoKnn', 'BaseKnn', 'BaseLabelGenerator', 'ClusteringMemoryError',
    'DBSCANLabelGenerator', 'ExactKnn', 'HNSWKnn', 'IVFKnn', 'Neighbours',
    'PCAKnn', 'build_knn',
    'camera_aware_knn', 'as_unit_features', 'available_memory',
    'cluster_quality', 'clustering_memory', 'contiguous_labels',
    'dbscan_labels', 'estimate_clustering_memory', 'faiss_num_threads',
    'jaccard_distance', 'k_reciprocal_encoding', 'k_reciprocal_sets',
    'knn_search', 'relabel_by_first_member', 'sharded_camera_aware_knn',
    'sharded_knn_search'
]
