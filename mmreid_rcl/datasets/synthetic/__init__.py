"""Synthetic person re-ID data, generated on demand (no download)."""
from .generator import (GENERATOR_VERSION, generate_synthetic_reid, is_current,
                        is_synthetic_dataset, load_meta, synthetic_params)
from .synthetic_reid import SyntheticReIDDataset

__all__ = [
    'GENERATOR_VERSION', 'generate_synthetic_reid', 'is_current',
    'is_synthetic_dataset', 'load_meta', 'synthetic_params',
    'SyntheticReIDDataset'
]
