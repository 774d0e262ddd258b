from .dist_utils import init_process_group_for
from .setup_env import register_all_modules

__all__ = ['register_all_modules', 'init_process_group_for']
