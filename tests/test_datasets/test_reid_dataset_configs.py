"""The dataset base configs build their datasets on tiny trees."""
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmengine import Config

from mmreid_rcl.datasets import BaseReIDDataset
from mmreid_rcl.registry import DATASETS
from mmreid_rcl.utils import register_all_modules

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'configs/_base_/datasets'

_MARKET = {
    'bounding_box_train': ['0001_c1s1_000001_00.jpg', '0002_c2s1_0002_00.jpg'],
    'query': ['0003_c1s1_000003_00.jpg'],
    'bounding_box_test': ['0003_c2s1_000004_00.jpg', '0004_c1s1_0005_00.jpg'],
}
# Each config file: its tree (folder -> names) and extra files (name -> text).
LAYOUTS = {
    'market1501': (_MARKET, {}),
    'dukemtmc': (_MARKET, {}),
    'cuhk03': (_MARKET, {}),
    'reid_image_folder': (_MARKET, {}),
    'personx': ({
        'bounding_box_train': ['0001_c3s1_0001.jpg', '0002_c4s1_0002.jpg'],
        'query': ['0100_c8s1_0001.jpg'],
        'bounding_box_test': ['0100_c10s1_0002.jpg', '0101_c3s1_0003.jpg'],
    }, {}),
    'veri776': ({
        'image_train': ['0001_c001_00016450_0.jpg', '0002_c002_0001_0.jpg'],
        'image_query': ['0003_c003_0001_0.jpg'],
        'image_test': ['0003_c004_0001_0.jpg', '0004_c001_0001_0.jpg'],
    }, {}),
    'msmt17': ({
        'train': ['0000/0000_000_01_0303morning_0015_0.jpg',
                  '0001/0001_000_02_0303morning_0016_0.jpg'],
        'test': ['0000/0000_000_03_0303noon_0001_0.jpg',
                 '0000/0000_000_04_0303noon_0002_0.jpg',
                 '0001/0001_000_01_0303noon_0003_0.jpg'],
    }, {
        'list_train.txt': '0000/0000_000_01_0303morning_0015_0.jpg 0\n',
        'list_val.txt': '0001/0001_000_02_0303morning_0016_0.jpg 1\n',
        'list_query.txt': '0000/0000_000_03_0303noon_0001_0.jpg 0\n',
        'list_gallery.txt': '0000/0000_000_04_0303noon_0002_0.jpg 0\n'
        '0001/0001_000_01_0303noon_0003_0.jpg 1\n',
    }),
}


def write_layout(root: Path, name: str) -> Path:
    """Write real (tiny, decodable) JPEGs in the layout of ``name``."""
    tree, extra_files = LAYOUTS[name]
    _, jpeg = cv2.imencode('.jpg', np.full((30, 12, 3), 90, np.uint8))
    for folder, names in tree.items():
        for file_name in names:
            path = root / folder / file_name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(jpeg.tobytes())
    for file_name, text in extra_files.items():
        (root / file_name).write_text(text)
    return root


def test_every_config_is_covered():
    configs = {p.stem for p in CONFIG_DIR.glob('*.py')} - {'reid_loaders'}
    assert sorted(configs) == sorted(LAYOUTS)


@pytest.mark.parametrize('name', sorted(LAYOUTS))
def test_config_builds_its_datasets(tmp_path, name):
    register_all_modules()
    cfg = Config.fromfile(str(CONFIG_DIR / f'{name}.py'))
    assert cfg.data_root.startswith('data/')
    root = write_layout(tmp_path, name)

    loaders = {
        'train_dataloader': ('train', 2),
        'cluster_dataloader': ('train', 2),
        'val_dataloader': ('test', 3),
        'test_dataloader': ('test', 3),
    }
    for key, (split, length) in loaders.items():
        loader = cfg[key]
        assert loader.dataset.type == cfg.dataset_type
        assert loader.dataset.split == split
        dataset_cfg = dict(loader.dataset, data_root=str(root))
        dataset = DATASETS.build(dataset_cfg)
        assert isinstance(dataset, BaseReIDDataset)
        assert len(dataset) == length
        pipeline_cfg = cfg.train_pipeline if key == 'train_dataloader' \
            else cfg.test_pipeline
        assert [type(t).__name__ for t in dataset.pipeline.transforms] == [
            t['type'] for t in pipeline_cfg
        ]
        if split == 'test':
            flags = dataset.get_query_flags()
            assert flags.tolist() == [True, False, False]

    assert cfg.train_dataloader.sampler.type == 'IdentitySampler'
    assert (cfg.train_dataloader.sampler.batch_size ==
            cfg.train_dataloader.batch_size)
    for key in ('cluster_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[key].sampler == dict(type='DefaultSampler', shuffle=False)
    assert cfg.val_evaluator.type == 'ReIDMetric'
    assert cfg.test_evaluator.type == 'ReIDMetric'


@pytest.mark.parametrize('loader', ['train_dataloader', 'val_dataloader'])
def test_config_pipeline_runs(tmp_path, loader):
    register_all_modules()
    cfg = Config.fromfile(str(CONFIG_DIR / 'market1501.py'))
    root = write_layout(tmp_path, 'market1501')
    dataset = DATASETS.build(dict(cfg[loader].dataset, data_root=str(root)))
    packed = dataset[len(dataset) - 1]
    assert tuple(packed['inputs'].shape) == (3, 256, 128)
    sample = packed['data_samples']
    info = dataset.get_data_info(len(dataset) - 1)
    assert sample.person_id == info['person_id']
    assert sample.camera_id == info['camera_id']
    assert sample.is_query == info['is_query']
