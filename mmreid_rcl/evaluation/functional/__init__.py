from .impostor_diagnostics import (distrust_report, draw_sets, impostor_auc,
                                   impostor_flags, impostor_report,
                                   mean_mutual_similarity,
                                   mutual_similarity_weights,
                                   normalised_entropy, other_camera_flags,
                                   pick_rates, roc_auc, rule_picks, set_loss,
                                   similarity_weights, single_impostor_lowest,
                                   within_set_auc)
from .rank import (average_precision_per_query, compute_distance,
                   evaluate_rank, per_query_metrics, protocol_exclusion,
                   rank_distances)
from .re_ranking import re_ranking

__all__ = [
    'compute_distance', 'evaluate_rank', 'per_query_metrics',
    'average_precision_per_query', 'protocol_exclusion', 'rank_distances',
    're_ranking', 'draw_sets', 'impostor_auc', 'impostor_flags',
    'impostor_report', 'mean_mutual_similarity',
    'mutual_similarity_weights', 'normalised_entropy', 'pick_rates',
    'roc_auc', 'rule_picks', 'set_loss', 'similarity_weights',
    'single_impostor_lowest', 'within_set_auc', 'distrust_report',
    'other_camera_flags'
]
