from .evaluate_before_train_hook import EvaluateBeforeTrainHook
from .iteration_seed_hook import IterationSeedHook
from .recluster_hook import (ReClusterHook, contiguous_labels,
                             extract_dataset_features, label_generator_cfg)

__all__ = [
    'EvaluateBeforeTrainHook', 'IterationSeedHook', 'ReClusterHook',
    'contiguous_labels', 'extract_dataset_features', 'label_generator_cfg'
]
