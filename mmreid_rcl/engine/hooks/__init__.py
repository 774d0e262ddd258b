from .evaluate_before_train_hook import EvaluateBeforeTrainHook
from .recluster_hook import (ReClusterHook, contiguous_labels,
                             extract_dataset_features)

__all__ = [
    'EvaluateBeforeTrainHook', 'ReClusterHook', 'contiguous_labels',
    'extract_dataset_features'
]
