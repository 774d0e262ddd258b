from .base_set_loss import BaseSetLoss
from .consensus_aggregate_loss import ConsensusAggregateLoss, consensus_targets
from .label_smooth_cross_entropy import (LabelSmoothCrossEntropyLoss,
                                         label_smooth_cross_entropy)
from .planted_impostor_loss import PlantedImpostorLoss, plant_impostors
from .set_contrastive_loss import SetContrastiveLoss
from .triplet_loss import TripletLoss, euclidean_distance, hard_example_mining

__all__ = [
    'LabelSmoothCrossEntropyLoss', 'label_smooth_cross_entropy',
    'TripletLoss', 'euclidean_distance', 'hard_example_mining',
    'ConsensusAggregateLoss', 'consensus_targets', 'PlantedImpostorLoss',
    'plant_impostors', 'SetContrastiveLoss', 'BaseSetLoss'
]
