"""mmreid_rcl: unsupervised person re-identification on mmengine."""
from .version import __version__

__all__ = ['__version__']
