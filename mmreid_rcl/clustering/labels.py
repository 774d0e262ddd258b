"""Renumbering of cluster labels."""
import numpy as np


def contiguous_labels(labels: np.ndarray) -> np.ndarray:
    """Renumber cluster ids to 0..C-1 (keeping their order); -1 stays."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full_like(labels, -1)
    keep = labels >= 0
    _, out[keep] = np.unique(labels[keep], return_inverse=True)
    return out
