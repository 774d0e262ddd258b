import importlib.util
import json
import os
import os.path as osp
import re
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from mmreid_rcl.datasets.synthetic import (GENERATOR_VERSION,
                                           generate_synthetic_reid)
from mmreid_rcl.datasets.synthetic import generator as gen_module
from mmreid_rcl.datasets.synthetic import (is_current, is_synthetic_dataset,
                                           synthetic_params)
from mmreid_rcl.datasets.synthetic.render import (sample_cameras,
                                                  sample_identity)

SMALL = dict(
    num_train_ids=8,
    num_test_ids=4,
    num_cameras=4,
    images_per_id_per_camera=3,
    num_distractors=3)
NAME = re.compile(r'^(\d{4})_c(\d)s1_(\d{6})_00\.jpg$')
REPO_ROOT = Path(__file__).resolve().parents[2]


def _generate(root, **overrides):
    cfg = dict(SMALL, progress=False)
    cfg.update(overrides)
    return generate_synthetic_reid(str(root), **cfg)


def _files(root):
    """Relative path -> bytes of every file under root."""
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = f.read()
    return out


def _parse(root, folder):
    items = []
    for name in sorted(os.listdir(osp.join(root, folder))):
        match = NAME.match(name)
        assert match, name
        items.append((int(match.group(1)), int(match.group(2))))
    return items


@pytest.fixture(scope='module')
def small_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic') / 'data'
    _generate(root)
    return root


def test_layout_and_counts(small_root):
    meta = json.loads((small_root / 'meta.json').read_text())
    assert meta['version'] == GENERATOR_VERSION
    assert meta['params'] == synthetic_params(**SMALL)

    train = _parse(small_root, 'bounding_box_train')
    query = _parse(small_root, 'query')
    gallery = _parse(small_root, 'bounding_box_test')
    train_ids = {p for p, _ in train}
    test_ids = {p for p, _ in query}
    assert train_ids == set(range(1, 9))
    assert len(test_ids) == 4 and not train_ids & test_ids
    assert {p for p, _ in gallery} == test_ids | {0}
    assert {c for _, c in train} == {c for _, c in query} == {1, 2, 3, 4}
    assert len(train) == 8 * 4 * 3 == meta['counts']['train']['images']
    # One query per test id and camera, the rest in the gallery.
    assert Counter(query) == {(p, c): 1 for p in test_ids for c in range(1, 5)}
    assert len(gallery) == 4 * 4 * 2 + 3 == meta['counts']['gallery']['images']
    assert meta['counts']['distractors'] == sum(p == 0 for p, _ in gallery)
    gallery_cams = defaultdict(set)
    for p, c in gallery:
        gallery_cams[p].add(c)
    for p, c in query:
        assert gallery_cams[p] - {c}, 'no cross-camera match for a query'

    img = cv2.imread(str(next((small_root / 'query').iterdir())))
    assert img.shape == (128, 64, 3)


def test_images_of_one_id_vary_and_show_a_person(small_root):
    folder = small_root / 'bounding_box_train'
    same = [cv2.imread(str(folder / n)).astype(np.float32)
            for n in sorted(os.listdir(folder)) if n.startswith('0001_c1')]
    assert len(same) == 3
    # Pose, crop and scene jitter: no two images of one id and camera are
    # alike.
    assert np.abs(same[0] - same[1]).mean() > 3
    # The person sits in the centre of the crop: over the train images, the
    # centre differs more from the camera's typical image than the border.
    imgs = np.stack([
        cv2.imread(str(folder / n)).astype(np.float32)
        for n in sorted(os.listdir(folder)) if '_c2s1_' in n
    ])
    dev = np.abs(imgs - imgs.mean(0)).mean((0, 3))
    assert dev[30:110, 22:42].mean() > dev[:, :6].mean()


def test_deterministic_for_a_seed(small_root, tmp_path):
    _generate(tmp_path / 'again')
    assert _files(tmp_path / 'again') == _files(small_root)

    _generate(tmp_path / 'other', seed=1)
    first, other = _files(small_root), _files(tmp_path / 'other')
    # Distractors fall on other cameras; every identity image changes.
    images = [k for k in first if k.endswith('.jpg') and '/0000_' not in k]
    assert len(images) == 8 * 4 * 3 + 4 * 4 * 3
    assert all(first[k] != other[k] for k in images)


def test_identities_share_colours_but_differ_in_combination():
    ids = [sample_identity(np.random.default_rng([0, i])) for i in range(300)]
    tops = Counter(i['top_name'] for i in ids)
    # Colour alone cannot tell identities apart ...
    assert max(tops.values()) >= 10
    # ... but the combination of attributes mostly does.
    combos = {(i['top_name'], i['pattern'], i['bottom_style'],
               i['hat'] is None, i['backpack'] is None, i['bag'] is None,
               i['hair_style'], i['sleeves']) for i in ids}
    assert len(combos) > 200
    assert len({i['pattern'] for i in ids}) == 4

    cams = sample_cameras(np.random.default_rng(0), 4)
    for key in ('scale', 'blur', 'gain'):
        assert len({c[key] for c in cams}) == 4
    assert len({tuple(c['cast']) for c in cams}) == 4


def test_current_check_and_regeneration(tmp_path, monkeypatch):
    root = tmp_path / 'data'
    _generate(root)
    assert is_synthetic_dataset(str(root))
    assert is_current(str(root), **SMALL)
    assert not is_current(str(root), **dict(SMALL, seed=3))

    # Current: nothing is rewritten.
    def fail(*args, **kwargs):
        raise AssertionError('regenerated a current data set')

    with monkeypatch.context() as m:
        m.setattr(gen_module, '_write_dataset', fail)
        _generate(root)

    # A missing image makes it incomplete, and it is regenerated.
    victim = sorted((root / 'query').iterdir())[0]
    victim.unlink()
    assert not is_current(str(root), **SMALL)
    _generate(root)
    assert victim.exists() and is_current(str(root), **SMALL)

    # A meta.json of another generator version is stale.
    meta = json.loads((root / 'meta.json').read_text())
    meta['version'] = GENERATOR_VERSION - 1
    (root / 'meta.json').write_text(json.dumps(meta))
    assert not is_current(str(root), **SMALL)
    _generate(root)
    assert is_current(str(root), **SMALL)

    # Without meta.json the folder is not a generated data set any more.
    (root / 'meta.json').unlink()
    assert not is_synthetic_dataset(str(root))


def test_interrupted_generation_leaves_old_data(tmp_path, monkeypatch):
    root = tmp_path / 'data'
    _generate(root)
    before = _files(root)
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        if len(calls) > 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    real = gen_module.render_image
    monkeypatch.setattr(gen_module, 'render_image', broken)
    with pytest.raises(KeyboardInterrupt):
        _generate(root, seed=7)
    # The old data set is untouched and no half-written folder is left.
    assert _files(root) == before
    assert sorted(os.listdir(tmp_path)) == ['data']

    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        _generate(tmp_path / 'fresh')
    assert not (tmp_path / 'fresh').exists()

    # Leftovers of a killed process (a pid that cannot exist) are removed
    # by the next generation.
    monkeypatch.undo()
    (tmp_path / '.fresh.tmp-999999999').mkdir()
    _generate(tmp_path / 'fresh')
    assert sorted(os.listdir(tmp_path)) == ['data', 'fresh']


def _load_cli():
    path = REPO_ROOT / 'tools' / 'make_synthetic_data.py'
    spec = importlib.util.spec_from_file_location('make_synthetic_data', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_refuses_foreign_folder(tmp_path, capsys):
    cli = _load_cli()
    root = tmp_path / 'mine'
    root.mkdir()
    (root / 'notes.txt').write_text('keep me')
    args = [
        '--root',
        str(root), '--num-train-ids', '3', '--num-test-ids', '2',
        '--images-per-id-per-camera', '2', '--num-distractors', '1',
        '--no-progress'
    ]
    assert cli.main(args) == 1
    assert '--force' in capsys.readouterr().err
    assert (root / 'notes.txt').read_text() == 'keep me'

    assert cli.main(args + ['--force']) == 0
    assert not (root / 'notes.txt').exists()
    out = capsys.readouterr().out
    assert re.search(r'train\s+3 ids\s+24 images', out)
    # A generated data set is replaced without --force when stale.
    assert cli.main(args + ['--seed', '5']) == 0
    meta = json.loads((root / 'meta.json').read_text())
    assert meta['params']['seed'] == 5


def test_bad_parameters():
    with pytest.raises(ValueError):
        synthetic_params(num_cameras=10)
    with pytest.raises(ValueError):
        synthetic_params(images_per_id_per_camera=1)


def test_dataset_class(small_root):
    from mmreid_rcl.datasets.synthetic import SyntheticReIDDataset
    from mmreid_rcl.registry import DATASETS

    cfg = dict(type='SyntheticReIDDataset', data_root=str(small_root))
    train = DATASETS.build(
        dict(cfg, split='train', generator_cfg=dict(SMALL, progress=False)))
    assert isinstance(train, SyntheticReIDDataset)
    assert len(train) == 8 * 4 * 3
    assert train.metainfo['num_ids'] == 8
    assert train.metainfo['num_cameras'] == 4
    assert set(train.get_camera_ids().tolist()) == {0, 1, 2, 3}

    test = DATASETS.build(
        dict(cfg, split='test', generator_cfg=dict(SMALL, progress=False)))
    flags, pids = test.get_query_flags(), test.get_person_ids()
    assert flags.sum() == 16 and (~flags).sum() == 4 * 4 * 2 + 3
    assert 0 in pids[~flags] and 0 not in pids[flags]
    with pytest.raises(ValueError):
        SyntheticReIDDataset(
            data_root=str(small_root), generator_cfg=dict(force=True))


def test_dataset_class_generates_when_missing(tmp_path):
    from mmreid_rcl.datasets.synthetic import SyntheticReIDDataset

    root = tmp_path / 'made_on_use'
    cfg = dict(SMALL, num_train_ids=3, num_test_ids=2, progress=False)
    query = SyntheticReIDDataset(
        data_root=str(root), split='query', generator_cfg=cfg)
    assert len(query) == 2 * 4
    params = {k: v for k, v in cfg.items() if k != 'progress'}
    assert is_current(str(root), **params)
