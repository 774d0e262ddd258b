"""The resize of the published recipe: PIL's antialiased bicubic, checked
against PIL and torchvision themselves on real CUHK03 images."""
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
    published = _test_pipeline('parity/cc_mobilenetv2_cpu_cuhk03_pillow.py')
    default = _test_pipeline('cluster_contrast_mobilenetv2_cpu_cuhk03.py')
    sharper = 0
    for path in images:
        out = published(dict(img_path=str(path)))['img']
        assert out.shape == (128, 64, 3) and out.dtype == np.uint8
        # The same decoded pixels through PIL (RGB) and torchvision's
        # Resize on a PIL image, the published code's route: identical.
        decoded = default.transforms[0](dict(img_path=str(path)))['img']
        rgb = Image.fromarray(np.ascontiguousarray(decoded[:, :, ::-1]))
        reference = np.asarray(rgb.resize((64, 128), Image.BICUBIC))
        np.testing.assert_array_equal(out[:, :, ::-1], reference)
        tv = np.asarray(T.Resize((128, 64), interpolation=3)(rgb))
        np.testing.assert_array_equal(out[:, :, ::-1], tv)
        # OpenCV's bicubic (the default) does not antialias: more energy
        # in the finest details of a downscaled image.
        cv = default(dict(img_path=str(path)))['img']
        assert cv.shape == out.shape and not np.array_equal(cv, out)
        sharper += _laplacian_energy(cv) > _laplacian_energy(out)
    assert sharper == len(images)


@pytest.mark.parametrize('config', [
    'parity/cc_mobilenetv2_cpu_cuhk03_pillow.py',
    'parity/cc_mobilenetv2_cpu_cuhk03_published.py'
])
def test_every_loader_of_a_parity_config_resizes_with_pil(config):
    cfg = Config.fromfile(str(CONFIGS / config))
    for loader in ('train_dataloader', 'cluster_dataloader',
                   'val_dataloader', 'test_dataloader'):
        resize = [t for t in cfg[loader].dataset.pipeline
                  if t['type'] == 'Resize']
        assert [t.get('backend') for t in resize] == ['pillow'], loader
