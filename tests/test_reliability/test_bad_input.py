"""Bad input ends in a clear error naming the file or setting, before any
work: a checkpoint of another model, an output that exists already, a file
name that does not fit the data set's pattern, an unreadable image."""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from mmreid_rcl.datasets import (CUHK03Dataset, DukeMTMCDataset,
                                 Market1501Dataset, MSMT17Dataset,
                                 PersonXDataset, ReIDImageFolder,
                                 VeRi776Dataset)
from mmreid_rcl.datasets.base_reid_dataset import UnreadableImagesError
from mmreid_rcl.datasets.reid_image_folder import MARKET_STYLE_PATTERN
from mmreid_rcl.registry import DATASETS
from mmreid_rcl.utils import register_all_modules
from mmreid_rcl.utils.output_files import check_outputs

REPO = Path(__file__).resolve().parents[2]


def load_module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def image_bytes(ext='.png', seed=0):
    """A small noisy image, encoded."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (32, 16, 3), dtype=np.uint8)
    return cv2.imencode(ext, img)[1].tobytes()


def write_market(root: Path, names_per_folder: dict) -> Path:
    for folder, names in names_per_folder.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            (root / folder / name).write_bytes(image_bytes())
    return root


# --------------------------------------------------------------------------
# 1. A checkpoint of another model: tools/test.py and the inferencer refuse.
@pytest.fixture(scope='module')
def other_model(tmp_path_factory):
    """A MobileNetV2 config and the checkpoint of a ResNet-18 model."""
    root = tmp_path_factory.mktemp('other_model')
    tiny = load_module(REPO / 'tests' / 'test_apis' / 'tiny_reid.py')
    checkpoint = str(root / 'resnet18.pth')
    tiny.make_checkpoint(tiny.tiny_config(), checkpoint)
    cfg = tiny.tiny_config(str(root / 'no_data'))
    cfg.model.backbone = dict(type='MobileNetV2')
    cfg.model.neck.in_channels = 1280
    cfg.model.head.memory.feat_dim = 1280
    cfg.test_evaluator = dict(type='ReIDMetric')
    config = str(root / 'mobilenetv2.py')
    cfg.dump(config)
    return dict(root=root, config=config, checkpoint=checkpoint)


def test_test_tool_refuses_a_checkpoint_of_another_model(other_model):
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / 'tools' / 'test.py'), other_model['config'],
            other_model['checkpoint'], '--work-dir',
            str(other_model['root'] / 'work')
        ],
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    message = result.stderr[result.stderr.index('checkpoint '):]
    assert message.startswith(
        f'checkpoint {other_model["checkpoint"]} does not fit the model '
        '(UnsupervisedReID): 260 of the 268 entries of the model are '
        'missing from it and 5 have another shape (at most 2 tolerated, '
        'max(2, 1 % of 268)); 100 of its 108 entries are not in the model '
        '(at most 2 tolerated)\n'
        '  missing: backbone.features.0.0.weight, ')
    assert ('  another shape: neck.bn.weight: checkpoint (512,), model '
            '(1280,); ') in message
    assert '  not in the model: backbone.conv1.weight, ' in message
    assert message.rstrip().endswith(
        'Was it made for another model or config?\n'
        'Pass --allow-partial to evaluate anyway.')
    assert 'reid/mAP' not in result.stdout  # nothing was evaluated


def test_inferencer_refuses_a_checkpoint_of_another_model(other_model):
    from mmreid_rcl.apis import ReIDInferencer
    from mmreid_rcl.engine.runner.state_dict_check import \
        CheckpointMismatchError
    with pytest.raises(CheckpointMismatchError,
                       match='260 of the 268 entries of the model are '
                       'missing'):
        ReIDInferencer(other_model['config'], other_model['checkpoint'])
    with pytest.warns(UserWarning, match='loaded partially'):
        ReIDInferencer(
            other_model['config'],
            other_model['checkpoint'],
            allow_partial=True)


# --------------------------------------------------------------------------
# 2. No tool replaces an existing file without --overwrite.
def test_check_outputs(tmp_path):
    out = tmp_path / 'a.png'
    assert check_outputs(str(out)) == [str(out)]
    out.write_bytes(b'x')
    with pytest.raises(FileExistsError) as err:
        check_outputs(out)
    assert str(err.value) == (f'{out} already exists; pass --overwrite to '
                              'replace it')
    assert check_outputs(out, overwrite=True) == [str(out)]
    (tmp_path / 'b.png').write_bytes(b'x')
    with pytest.raises(FileExistsError,
                       match=r'2 outputs already exist: .*a\.png, .*b\.png; '
                       'pass --overwrite to replace them'):
        check_outputs([out, tmp_path / 'b.png'])
    with pytest.raises(IsADirectoryError, match='is a folder; a file name'):
        check_outputs(tmp_path, overwrite=True)


def _tool_cases(tmp: Path):
    """(tool, argv, existing output, expected message) per writing tool.

    The config and checkpoint do not exist: the refusal must come first.
    """
    (tmp / 'gallery').mkdir()
    query = tmp / 'query.png'
    query.write_bytes(image_bytes())
    (tmp / 'pages').mkdir()
    (tmp / 'cfg.py').write_text('x = 1\n')
    (tmp / 'ck.pth').write_bytes(b'x')
    (tmp / 'taken').mkdir()
    (tmp / 'taken' / 'notes.txt').write_text('mine')
    out = {
        name: tmp / name
        for name in ('result.png', 'clusters.png', 'curves.png', 'f.npz',
                     'diag.json', 'converted.pth')
    }
    page = tmp / 'pages' / 'ranking_worst_01.png'
    nocfg, nock = str(tmp / 'nocfg.py'), str(tmp / 'nock.pth')
    exists = '{} already exists; pass --overwrite to replace it'
    return [
        ('search.py', [
            str(query),
            str(tmp / 'gallery'), '--config', nocfg, '--checkpoint', nock,
            '--out',
            str(out['result.png'])
        ], out['result.png'], '--out: ' + exists),
        ('visualize_ranking.py', [
            nocfg, nock, '--out-dir',
            str(tmp / 'pages'), '--worst', '3', '--per-image', '2'
        ], page, '--out-dir: ' + exists),
        ('visualize_clusters.py', [
            nocfg, nock, '--out', str(out['clusters.png'])
        ], out['clusters.png'], '--out: ' + exists),
        ('plot_logs.py', [str(tmp / 'no_run'), '--out',
                          str(out['curves.png'])], out['curves.png'],
         'plot_logs: ' + exists),
        ('extract_features.py', [
            nocfg, nock,
            str(tmp / 'gallery'), '--out',
            str(out['f.npz'])
        ], out['f.npz'], exists),
        ('analysis/hps_diagnostics.py', [
            str(tmp / 'cfg.py'),
            str(tmp / 'ck.pth'), '--json',
            str(out['diag.json'])
        ], out['diag.json'], exists),
        ('model_converters/mobilenetv2_to_mmreid.py', [
            nock, str(out['converted.pth'])
        ], out['converted.pth'], 'error: {} already exists; pass '
         '--overwrite (or --force) to replace it'),
        ('make_synthetic_data.py', [
            '--root', str(tmp / 'taken'), '--no-progress'
        ], tmp / 'taken' / 'notes.txt', 'error: {} is not empty and holds '
         'no generated synthetic data set (no meta.json of this generator);'
         ' pass --overwrite (or --force) to replace it.'),
    ]


TOOLS = [
    'search.py', 'visualize_ranking.py', 'visualize_clusters.py',
    'plot_logs.py', 'extract_features.py', 'analysis/hps_diagnostics.py',
    'model_converters/mobilenetv2_to_mmreid.py', 'make_synthetic_data.py'
]


@pytest.mark.parametrize('tool', TOOLS)
def test_tool_refuses_to_overwrite(tool, tmp_path, capsys):
    [(_, argv, existing, expected)] = [
        case for case in _tool_cases(tmp_path) if case[0] == tool
    ]
    if not existing.exists():
        existing.write_bytes(b'keep me')
    before = existing.read_bytes()
    module = load_module(REPO / 'tools' / tool)
    try:
        code = module.main(argv)
        message = capsys.readouterr().err.strip()
    except SystemExit as exc:
        code, message = 1, str(exc.code)
    assert code == 1
    # The data set generator refuses the folder its file is in.
    named = existing.parent if tool == 'make_synthetic_data.py' else existing
    assert message == expected.format(named)
    assert existing.read_bytes() == before


# --------------------------------------------------------------------------
# 3. File names: the whole Market-style name, every failure named.
@pytest.mark.parametrize(
    'cls, name, ids',
    [
        (Market1501Dataset, '0002_c1s1_000451_03.jpg', (2, 1)),
        (Market1501Dataset, '-1_c1s1_000401_03.jpg', (-1, 1)),  # junk
        (Market1501Dataset, '0000_c6s1_000151_01.jpg', (0, 6)),
        (DukeMTMCDataset, '0001_c2_f0046182.jpg', (1, 2)),
        (CUHK03Dataset, '0000_c1s1_000000_00.jpg', (0, 1)),
        (PersonXDataset, '0001_c3s1_0001.jpg', (1, 3)),
        (PersonXDataset, '0100_c12s1_0001.jpg', (100, 12)),
        (VeRi776Dataset, '0001_c001_00016450_0.jpg', (1, 1)),
        (MSMT17Dataset, '0000_c15_0001.jpg', (0, 15)),
    ])
def test_real_data_set_names_match(cls, name, ids):
    assert cls.PATTERN == MARKET_STYLE_PATTERN
    found = re.search(cls.PATTERN, name)
    assert found and tuple(int(g) for g in found.groups()) == ids
    config = Config.fromfile(
        str(REPO / 'configs' / '_base_' / 'datasets' /
            'reid_image_folder.py'))
    found = re.search(config.name_pattern, name)
    assert (int(found['pid']), int(found['camid'])) == ids


def test_bad_names_are_all_named_with_the_pattern(tmp_path):
    bad = [
        '0001_c1s1_000001_00 (1).jpg', '1-2_c1s1_000001_00.jpg',
        'x0001_c1s1_000001_00.jpg'
    ]
    root = write_market(tmp_path, {'query': ['0001_c1s1_000001_00.jpg'] + bad})
    with pytest.raises(ValueError) as err:
        Market1501Dataset(str(root), split='query')
    assert str(err.value) == (
        f"Market-1501: 3 file name(s) in '{root / 'query'}' do not fit: "
        "'0001_c1s1_000001_00 (1).jpg' (does not match the pattern), "
        "'1-2_c1s1_000001_00.jpg' (does not match the pattern), "
        "'x0001_c1s1_000001_00.jpg' (does not match the pattern); names "
        f'must match the pattern "{MARKET_STYLE_PATTERN}" (e.g. '
        "'0002_c1s1_000451_03.jpg'; set pattern= in the dataset config for "
        'other names).')


def test_a_group_that_is_not_a_number_is_named(tmp_path):
    root = write_market(tmp_path, {'probe': ['ab_c1.png']})
    with pytest.raises(ValueError) as err:
        ReIDImageFolder(
            str(root),
            split='query',
            split_dirs=dict(query='probe'),
            pattern=r'(?P<pid>[a-z]+)_c(?P<camid>\d+)')
    assert ("'ab_c1.png' (gives the person id 'ab' and the camera '1', not "
            'two integers); names must match the pattern '
            '"(?P<pid>[a-z]+)_c(?P<camid>\\d+)"') in str(err.value)


# --------------------------------------------------------------------------
# 4. Unreadable images: all found when the data set is built, one error.
@pytest.fixture
def broken_market(tmp_path):
    names = [f'{pid:04d}_c{cam}s1_000001_00.jpg' for pid in (1, 2, 3)
             for cam in (1, 2)]
    root = write_market(tmp_path / 'market', {
        'bounding_box_train': names,
        'query': names[:2],
        'bounding_box_test': names[2:]
    })
    jpeg = image_bytes('.jpg')
    train, query = root / 'bounding_box_train', root / 'query'
    (train / names[1]).write_bytes(jpeg[:len(jpeg) // 2])  # truncated
    (train / names[3]).write_bytes(b'')
    (train / names[4]).write_bytes(b'not an image at all')
    (query / names[0]).write_bytes(jpeg[:len(jpeg) // 2])
    return root, names


def test_train_split_names_every_unreadable_image(broken_market):
    root, names = broken_market
    train = root / 'bounding_box_train'
    with pytest.raises(UnreadableImagesError) as err:
        Market1501Dataset(str(root), split='train')
    assert str(err.value) == (
        f"3 image file(s) of the train split of Market-1501 under '{root}' "
        f'cannot be read: {train / names[1]} (cannot be decoded: truncated '
        f'or corrupt), {train / names[3]} (empty, 0 bytes), '
        f'{train / names[4]} (cannot be decoded: truncated or corrupt). '
        'Re-copy or delete them, or set skip_empty_files=True to leave '
        'zero-byte images out.')
    # Zero-byte files left out: the corrupt ones are still an error.
    with pytest.raises(UnreadableImagesError, match='2 image file'):
        Market1501Dataset(str(root), split='train', skip_empty_files=True)


def test_verify_images_defaults_to_the_train_split_only(broken_market):
    root, names = broken_market
    register_all_modules()
    query = DATASETS.build(
        dict(type='Market1501Dataset', data_root=str(root), split='query'))
    assert len(query) == 2 and not query.verify_images
    with pytest.raises(UnreadableImagesError,
                       match=re.escape(str(root / 'query' / names[0]))):
        DATASETS.build(
            dict(
                type='Market1501Dataset',
                data_root=str(root),
                split='query',
                verify_images=True))
    # Zero-byte files are found without decoding, in every split.
    (root / 'query' / names[1]).write_bytes(b'')
    with pytest.raises(UnreadableImagesError, match='(empty, 0 bytes)'):
        Market1501Dataset(str(root), split='test')


def test_a_file_damaged_after_a_good_check_is_found(tmp_path):
    root = write_market(tmp_path, {'bounding_box_train': ['0001_c1.png']})
    assert len(Market1501Dataset(str(root), split='train')) == 1
    path = root / 'bounding_box_train' / '0001_c1.png'
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(UnreadableImagesError, match='0001_c1.png'):
        Market1501Dataset(str(root), split='train')


def test_many_unreadable_images_are_counted(tmp_path):
    names = [f'0001_c1s1_{i:06d}_00.jpg' for i in range(13)]
    root = tmp_path / 'market'
    (root / 'bounding_box_train').mkdir(parents=True)
    for name in names:
        (root / 'bounding_box_train' / name).write_bytes(b'junk')
    with pytest.raises(UnreadableImagesError) as err:
        Market1501Dataset(str(root), split='train')
    message = str(err.value)
    assert message.startswith('13 image file(s) of the train split')
    assert names[9] in message and names[10] not in message
    assert message.endswith('(cannot be decoded: truncated or corrupt) and 3 '
                            'more. Re-copy or delete them.')
