from .cluster_contrast_head import ClusterContrastHead

__all__ = ['ClusterContrastHead']
