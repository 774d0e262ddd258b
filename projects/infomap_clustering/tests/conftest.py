"""Make ``projects.infomap_clustering`` importable from the repository root,
however pytest was started (``python -m pytest`` adds the working directory,
the ``pytest`` script does not)."""
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
