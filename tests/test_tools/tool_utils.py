"""Helpers of the tool tests: load a script under tools/ as a module, and
train-free tiny models on tiny Market-layout folders."""
import importlib.util
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
TOOLS = TESTS.parent / 'tools'


def load_module(name: str, path):
    """Import the file ``path`` as the module ``name``."""
    spec = importlib.util.spec_from_file_location(name, str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_tool(relpath: str):
    """A script under tools/, e.g. ``load_tool('search.py')``."""
    return load_module(Path(relpath).stem, TOOLS / relpath)


def tiny_model(root: Path, num_ids: int, seed: int, images_per_cam: int = 2):
    """A tiny Market-layout folder under ``root/data``, a config for it
    and a randomly initialised checkpoint: ``(config, checkpoint,
    data_root)``."""
    tiny = load_module('tiny_reid', TESTS / 'test_apis' / 'tiny_reid.py')
    data_root = tiny.write_market_folder(
        str(root / 'data'), num_ids=num_ids, images_per_cam=images_per_cam)
    cfg = tiny.tiny_config(data_root)
    config = tiny.write_config(cfg, root / 'tiny_cfg.py')
    checkpoint = str(root / 'model.pth')
    tiny.make_checkpoint(cfg, checkpoint, seed=seed)
    return config, checkpoint, data_root
