from .ranking import draw_ranking, save_ranking

__all__ = ['draw_ranking', 'save_ranking']
