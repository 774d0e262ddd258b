from .rank import compute_distance, evaluate_rank
from .re_ranking import re_ranking

__all__ = ['compute_distance', 'evaluate_rank', 're_ranking']
