from .impostor_diagnostics import (draw_sets, impostor_auc, impostor_flags,
                                   impostor_report, mean_mutual_similarity,
                                   mutual_similarity_weights,
                                   normalised_entropy, pick_rates, roc_auc,
                                   rule_picks, set_loss, similarity_weights,
                                   single_impostor_lowest, within_set_auc)
from .rank import compute_distance, evaluate_rank
from .re_ranking import re_ranking

__all__ = [
    'compute_distance', 'evaluate_rank', 're_ranking', 'draw_sets',
    'impostor_auc', 'impostor_flags', 'impostor_report',
    'mean_mutual_similarity',
    'mutual_similarity_weights', 'normalised_entropy', 'pick_rates',
    'roc_auc', 'rule_picks', 'set_loss', 'similarity_weights',
    'single_impostor_lowest', 'within_set_auc'
]
