"""Registering every module of the package into the registries."""
import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every module that registers components.

    Args:
        init_default_scope (bool): Whether to make ``mmreid_rcl`` the current
            default scope, so that registry look-ups find our components
            first. Defaults to True.
    """
    import mmreid_rcl.clustering  # noqa: F401,F403
    import mmreid_rcl.datasets  # noqa: F401,F403
    import mmreid_rcl.engine  # noqa: F401,F403
    import mmreid_rcl.evaluation  # noqa: F401,F403
    import mmreid_rcl.models  # noqa: F401,F403
    import mmreid_rcl.structures  # noqa: F401,F403

    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None:
        DefaultScope.get_instance('mmreid_rcl', scope_name='mmreid_rcl')
    elif current.scope_name != 'mmreid_rcl':
        warnings.warn(f'The current default scope "{current.scope_name}" is '
                      'not "mmreid_rcl"; a new default scope named '
                      'mmreid_rcl-<time> is created so that registry '
                      'look-ups find mmreid_rcl components.')
        new_name = f'mmreid_rcl-{datetime.datetime.now()}'
        DefaultScope.get_instance(new_name, scope_name='mmreid_rcl')
