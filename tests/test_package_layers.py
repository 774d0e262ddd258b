"""The package's layers: no subpackage imports one on its own floor or
above it, so the import graph has no cycle and each idea has one home."""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1] / 'mmreid_rcl'
# Floors, bottom first: a subpackage may import only from lower floors.
FLOORS = (
    ('version', 'registry', 'structures', 'utils'),
    ('datasets', 'clustering', 'models', 'visualization'),
    ('evaluation', ),
    ('engine', ),
    ('apis', ),
)
FLOOR = {name: i for i, names in enumerate(FLOORS) for name in names}
# register_all_modules imports every subpackage, inside the function, to
# fill the registries: the one deliberate way up (mmengine's convention).
DEFERRED_EXCEPTIONS = ('mmreid_rcl/utils/setup_env.py', )


def _imports(path: pathlib.Path, module: str, top_level_only: bool):
    """(line, imported module) of one file's imports of the package."""
    tree = ast.parse(path.read_text())
    package = module if path.name == '__init__.py' else module.rsplit(
        '.', 1)[0]
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')[:len(package.split('.')) -
                                          node.level + 1]
                names = ['.'.join(base + [node.module or ''])]
            else:
                names = [node.module or '']
        else:
            continue
        for name in names:
            if name.startswith('mmreid_rcl.'):
                yield node.lineno, name


def _violations(top_level_only: bool):
    found = []
    for path in sorted(ROOT.rglob('*.py')):
        parts = list(path.relative_to(ROOT.parent).with_suffix('').parts)
        if parts[-1] == '__init__':
            parts = parts[:-1]
        if len(parts) < 2:
            continue  # the package's own __init__
        module, source = '.'.join(parts), parts[1]
        relative = str(path.relative_to(ROOT.parent))
        if not top_level_only and relative in DEFERRED_EXCEPTIONS:
            continue
        for line, name in _imports(path, module, top_level_only):
            target = name.split('.')[1]
            if target != source and FLOOR[target] >= FLOOR[source]:
                found.append(f'{relative}:{line} {source} -> {target}')
    return found


def test_every_subpackage_has_a_floor():
    names = {
        p.stem if p.is_file() else p.name
        for p in ROOT.iterdir()
        if (p.is_dir() and (p / '__init__.py').exists()) or
        (p.suffix == '.py' and p.stem != '__init__')
    }
    assert names == set(FLOOR)


def test_module_level_imports_only_go_down():
    assert _violations(top_level_only=True) == []


def test_deferred_imports_only_go_down():
    # Imports inside functions too: no way around the layers.
    assert _violations(top_level_only=False) == []
