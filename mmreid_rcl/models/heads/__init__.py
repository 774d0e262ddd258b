from .cluster_contrast_head import ClusterContrastHead
from .cosine_classifier import CosineClassifier
from .identity_classification_head import IdentityClassificationHead
from .linear_classifier import LinearClassifier

__all__ = [
    'ClusterContrastHead', 'IdentityClassificationHead', 'LinearClassifier',
    'CosineClassifier'
]
