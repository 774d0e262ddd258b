"""Make ``projects.infomap_clustering`` importable from the repository root,
however pytest was started (``python -m pytest`` adds the working directory,
the ``pytest`` script does not)."""
from mmreid_rcl.utils.run_setup import make_projects_importable

make_projects_importable()
