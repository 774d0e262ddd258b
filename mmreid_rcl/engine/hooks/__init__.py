from .recluster_hook import (ReClusterHook, contiguous_labels,
                             extract_dataset_features)

__all__ = ['ReClusterHook', 'contiguous_labels', 'extract_dataset_features']
