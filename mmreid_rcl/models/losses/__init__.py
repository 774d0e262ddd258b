from .label_smooth_cross_entropy import (LabelSmoothCrossEntropyLoss,
                                         label_smooth_cross_entropy)
from .triplet_loss import TripletLoss, euclidean_distance, hard_example_mining

__all__ = [
    'LabelSmoothCrossEntropyLoss', 'label_smooth_cross_entropy',
    'TripletLoss', 'euclidean_distance', 'hard_example_mining'
]
