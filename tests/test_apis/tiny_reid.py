"""A tiny re-ID set-up for inference tests: images, config, checkpoint.

Also loaded by the tool tests (through importlib, by path).
"""
import os
import os.path as osp

import cv2
import numpy as np
import torch
from mmengine.config import Config

HEIGHT, WIDTH = 64, 32
FEAT_DIM = 512


def write_market_folder(root, num_ids=6, images_per_cam=2, seed=0):
    """A Market-1501-style folder of small synthetic person images.

    Every identity has its own colours (upper and lower body); the two
    cameras differ in brightness and each image has its own noise, so
    images of one identity are alike but never equal. Sizes vary around
    (HEIGHT, WIDTH) so that the pipeline's resize matters.

    Returns:
        str: ``root``.
    """
    rng = np.random.default_rng(seed)
    for split, offset in (('bounding_box_train', 0), ('query', 100),
                          ('bounding_box_test', 100)):
        folder = osp.join(root, split)
        os.makedirs(folder, exist_ok=True)
        count = 1 if split == 'query' else images_per_cam
        for pid in range(offset + 1, offset + num_ids + 1):
            colours = np.random.default_rng(pid).integers(0, 256, (2, 3))
            for cam in (1, 2):
                for k in range(count):
                    h = HEIGHT + int(rng.integers(-8, 9))
                    w = WIDTH + int(rng.integers(-4, 5))
                    img = np.empty((h, w, 3), np.float64)
                    img[:h // 2] = colours[0]
                    img[h // 2:] = colours[1]
                    img += 25 * (cam - 1.5) + rng.normal(0, 20, img.shape)
                    name = f'{pid:04d}_c{cam}s1_{k:06d}_00.png'
                    cv2.imwrite(
                        osp.join(folder, name),
                        np.clip(img, 0, 255).astype(np.uint8))
    return root


def tiny_config(data_root='data/none', channels_last=False):
    """A ResNet-18 re-ID model on 64x32 images of a Market-style root."""
    test_pipeline = [
        dict(type='LoadReIDImage'),
        dict(
            type='Resize',
            scale=(WIDTH, HEIGHT),
            keep_ratio=False,
            interpolation='bicubic'),
        dict(type='PackReIDInputs'),
    ]
    return Config(
        dict(
            default_scope='mmreid_rcl',
            model=dict(
                type='UnsupervisedReID',
                data_preprocessor=dict(type='ReIDDataPreprocessor'),
                backbone=dict(type='ReIDResNet', depth=18, last_stride=1),
                neck=dict(type='ReIDNeck', in_channels=512, pooling='gem'),
                head=dict(
                    type='ClusterContrastHead',
                    memory=dict(type='ClusterMemory', feat_dim=FEAT_DIM)),
                channels_last=channels_last),
            test_dataloader=dict(
                batch_size=8,
                num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=False),
                dataset=dict(
                    type='Market1501Dataset',
                    data_root=data_root,
                    split='test',
                    pipeline=test_pipeline))))


def write_config(cfg, path):
    cfg.dump(str(path))
    return str(path)


def make_checkpoint(cfg, path, seed=0):
    """Save a randomly initialised model with non-trivial statistics.

    BatchNorm statistics and the neck's GeM power are randomised, and the
    model holds a clustering (prototypes, pseudo labels), so a checkpoint
    that is not really loaded gives different features.

    Returns:
        UnsupervisedReID: The model that was saved (eval mode).
    """
    from mmreid_rcl.registry import MODELS
    from mmreid_rcl.utils import register_all_modules
    register_all_modules()
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                shape = module.running_mean.shape
                module.running_mean.normal_(0, 0.1, generator=generator)
                module.running_var.copy_(
                    0.5 + torch.rand(shape, generator=generator))
        model.neck.pool.p.fill_(2.5)
        feats = torch.randn(9, FEAT_DIM, generator=generator)
        model.set_clusters(feats, torch.arange(9) % 3, epoch=1)
    model.eval()
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, str(path))
    return model
