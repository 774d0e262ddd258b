"""InfoMap community detection on a kNN graph as a pseudo-label generator.

Importing this package registers ``InfomapLabelGenerator`` in
``mmreid_rcl.registry.LABEL_GENERATORS``; a config loads it with
``custom_imports = dict(imports=['projects.infomap_clustering.'
'infomap_clustering'])``.
"""
from .infomap_label_generator import InfomapLabelGenerator, knn_graph_links

__all__ = ['InfomapLabelGenerator', 'knn_graph_links']
