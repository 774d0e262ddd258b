from .evaluate_before_train_hook import EvaluateBeforeTrainHook
from .iteration_seed_hook import IterationSeedHook
from .recluster_hook import (ReClusterHook, build_label_generator,
                             label_generator_cfg)

__all__ = [
    'EvaluateBeforeTrainHook', 'IterationSeedHook', 'ReClusterHook',
    'build_label_generator', 'label_generator_cfg'
]
