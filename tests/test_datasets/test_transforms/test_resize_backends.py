"""The resize of the CPU recipe (the published code's): PIL's antialiased
bicubic, checked against PIL and torchvision themselves on real CUHK03
images, and OpenCV's, the switch kept for the previous recipe."""
from pathlib import Path

import numpy as np
import pytest
from mmcv.transforms import Compose
from mmengine.config import Config
from PIL import Image
from torchvision import transforms as T

from mmreid_rcl.utils import register_all_modules

CONFIGS = Path(__file__).resolve().parents[3] / 'configs' / 'cluster_contrast'


def _test_pipeline(config):
    cfg = Config.fromfile(str(CONFIGS / config))
    register_all_modules(init_default_scope=True)
    steps = [t for t in cfg.test_dataloader.dataset.pipeline
             if t['type'] != 'PackReIDInputs']
    return Compose(steps)


def _laplacian_energy(img):
    x = img.astype(np.float64).mean(axis=2)
    lap = (4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] -
           x[1:-1, 2:])
    return float((lap**2).mean())


def test_pillow_backend_is_pils_bicubic(cuhk03_root):
    images = sorted((cuhk03_root / 'bounding_box_train').glob('*.jpg'))[:6]
    assert images, f'no images in {cuhk03_root}/bounding_box_train'
    published = _test_pipeline('cluster_contrast_mobilenetv2_cpu_cuhk03.py')
    opencv = _test_pipeline('parity/cc_mobilenetv2_cpu_cuhk03_cv2.py')
    sharper = 0
    for path in images:
        out = published(dict(img_path=str(path)))['img']
        assert out.shape == (128, 64, 3) and out.dtype == np.uint8
        # The same decoded pixels through PIL (RGB) and torchvision's
        # Resize on a PIL image, the published code's route: identical.
        decoded = opencv.transforms[0](dict(img_path=str(path)))['img']
        rgb = Image.fromarray(np.ascontiguousarray(decoded[:, :, ::-1]))
        reference = np.asarray(rgb.resize((64, 128), Image.BICUBIC))
        np.testing.assert_array_equal(out[:, :, ::-1], reference)
        tv = np.asarray(T.Resize((128, 64), interpolation=3)(rgb))
        np.testing.assert_array_equal(out[:, :, ::-1], tv)
        # OpenCV's bicubic does not antialias: more energy in the finest
        # details of a downscaled image.
        cv = opencv(dict(img_path=str(path)))['img']
        assert cv.shape == out.shape and not np.array_equal(cv, out)
        sharper += _laplacian_energy(cv) > _laplacian_energy(out)
    assert sharper == len(images)


@pytest.mark.parametrize('config, backend', [
    ('cluster_contrast_mobilenetv2_cpu_cuhk03.py', 'pillow'),
    ('parity/cc_mobilenetv2_cpu_cuhk03_mean_erasing.py', 'pillow'),
    ('parity/cc_mobilenetv2_cpu_cuhk03_round_robin.py', 'pillow'),
    ('parity/cc_mobilenetv2_cpu_cuhk03_cv2.py', 'cv2'),
    ('cluster_contrast_mobilenetv2_cpu_cuhk03_previous.py', 'cv2'),
])
def test_every_loader_of_a_recipe_resizes_the_same_way(config, backend):
    cfg = Config.fromfile(str(CONFIGS / config))
    for loader in ('train_dataloader', 'cluster_dataloader',
                   'val_dataloader', 'test_dataloader'):
        resize = [t for t in cfg[loader].dataset.pipeline
                  if t['type'] == 'Resize']
        assert [t.get('backend') for t in resize] == [backend], loader


# Each parity switch reverts exactly one behaviour of the recipe (the
# training pipeline's erasing, the sampler's instance rule, the resize);
# the previous recipe reverts all three.
_ERASING = dict(type='RandomErasing', prob=0.5)
_PUBLISHED_ERASING = dict(type='RandomErasing', prob=0.5,
                          fill=(126.82, 142.33, 152.0),
                          aspect_sampling='uniform')


@pytest.mark.parametrize('config, erasing, rule', [
    ('cluster_contrast_mobilenetv2_cpu_cuhk03.py', _PUBLISHED_ERASING,
     'anchor_cross_camera'),
    ('parity/cc_mobilenetv2_cpu_cuhk03_cv2.py', _PUBLISHED_ERASING,
     'anchor_cross_camera'),
    ('parity/cc_mobilenetv2_cpu_cuhk03_mean_erasing.py', _ERASING,
     'anchor_cross_camera'),
    ('parity/cc_mobilenetv2_cpu_cuhk03_round_robin.py', _PUBLISHED_ERASING,
     'round_robin'),
    ('cluster_contrast_mobilenetv2_cpu_cuhk03_previous.py', _ERASING,
     'round_robin'),
])
def test_parity_switches_revert_one_behaviour_each(config, erasing, rule):
    cfg = Config.fromfile(str(CONFIGS / config))
    loader = cfg.train_dataloader
    assert loader.sampler.get('instance_rule', 'round_robin') == rule
    steps = [t for t in loader.dataset.pipeline
             if t['type'] == 'RandomErasing']
    assert [dict(t) for t in steps] == [erasing]
    recipe = Config.fromfile(
        str(CONFIGS / 'cluster_contrast_mobilenetv2_cpu_cuhk03.py'))
    # Nothing else differs: the same model, schedule and clustering.
    assert cfg.model == recipe.model
    assert cfg.custom_hooks == recipe.custom_hooks
    assert cfg.param_scheduler == recipe.param_scheduler
