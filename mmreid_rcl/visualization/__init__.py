from .clusters import (cluster_palette, draw_clusters, embed_2d, label_colours,
                       plot_clusters, select_subset)
from .protocol_curves import draw_protocol_curves, plot_protocol_curves
from .ranking import draw_ranking, save_ranking
from .training_curves import (TrainingCurves, draw_training_curves,
                              load_training_curves, plot_training_curves)

__all__ = [
    'draw_ranking', 'save_ranking', 'TrainingCurves', 'load_training_curves',
    'draw_training_curves', 'plot_training_curves', 'cluster_palette',
    'label_colours', 'embed_2d', 'select_subset', 'draw_clusters',
    'plot_clusters', 'draw_protocol_curves', 'plot_protocol_curves'
]
