from .cluster_attention_aggregator import (ClusterAttentionAggregator,
                                           group_into_sets)
from .gem import GeneralizedMeanPooling
from .global_pooling import GlobalAveragePooling, GlobalMaxPooling
from .reid_neck import ReIDNeck
from .similarity_attention_aggregator import SimilarityAttentionAggregator

__all__ = [
    'ClusterAttentionAggregator', 'group_into_sets',
    'GeneralizedMeanPooling', 'GlobalAveragePooling', 'GlobalMaxPooling',
    'ReIDNeck', 'SimilarityAttentionAggregator'
]
