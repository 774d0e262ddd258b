"""tools/visualize_clusters.py: features -> clustering -> 2-D picture."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / 'tools' / 'visualize_clusters.py'


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('visualize_clusters',
                                                  SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config(path, with_hook=True):
    hooks = []
    if with_hook:
        hooks.append(
            dict(
                type='ReClusterHook',
                label_generator=dict(
                    type='DBSCANLabelGenerator', eps=0.6, min_samples=3,
                    k1=8, k2=3)))
    Config(dict(default_scope='mmreid_rcl', custom_hooks=hooks)).dump(
        str(path))
    return str(path)


def _blobs(path, with_pids=True):
    """Five tight blobs of 12 unit vectors, ids = blobs."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 32))
    feats = np.repeat(centres, 12, axis=0) + 0.02 * rng.normal(size=(60, 32))
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    data = dict(features=feats.astype(np.float32))
    if with_pids:
        data['pids'] = np.repeat(np.arange(5), 12)
    np.savez(path, **data)
    return str(path)


def test_from_a_feature_file(tool, tmp_path, capsys):
    cfg = _config(tmp_path / 'cfg.py')
    feats = _blobs(tmp_path / 'f.npz')
    out = tmp_path / 'c.png'
    tool.main([cfg, 'unused.pth', '--features', feats, '--method', 'pca',
               '--num', '0', '--show-true-ids', '--out', str(out)])
    text = capsys.readouterr().out
    assert f'features read from {feats}' in text
    assert '5 clusters, 0 outliers of 60' in text
    assert 'ARI 1.000' in text
    with Image.open(out) as img:
        assert img.size == (1200, 660)  # two 6-inch panels at 100 dpi
    # A setting changed from the command line reaches the label generator.
    tool.main([cfg, 'unused.pth', '--features', feats, '--method', 'pca',
               '--out', str(out), '--overwrite', '--cfg-options',
               'custom_hooks.0.label_generator.min_samples=13'])
    assert '0 clusters, 60 outliers of 60' in capsys.readouterr().out


def test_errors(tool, tmp_path):
    cfg = _config(tmp_path / 'cfg.py')
    no_pids = _blobs(tmp_path / 'f.npz', with_pids=False)
    out = str(tmp_path / 'c.png')
    with pytest.raises(SystemExit, match='has no true identities'):
        tool.main([cfg, 'x.pth', '--features', no_pids, '--show-true-ids',
                   '--out', out])
    with pytest.raises(SystemExit, match='no ReClusterHook'):
        tool.main([_config(tmp_path / 'bare.py', with_hook=False), 'x.pth',
                   '--features', no_pids, '--out', out])
    with pytest.raises(SystemExit, match='checkpoint missing.pth does not'):
        tool.main([cfg, 'missing.pth', '--out', out])
    np.savez(tmp_path / 'bad.npz', feats=np.zeros((4, 2)))
    with pytest.raises(SystemExit, match=r'no `features` array'):
        tool.main([cfg, 'x.pth', '--features', str(tmp_path / 'bad.npz'),
                   '--out', out])


@pytest.mark.slow
def test_extracts_with_a_checkpoint(tool, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        'e2e_utils', REPO / 'tests' / 'test_engine' / 'e2e_utils.py')
    e2e = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(e2e)
    from mmreid_rcl.registry import MODELS
    from mmreid_rcl.utils import register_all_modules
    register_all_modules()
    root = e2e.make_tiny_dataset(str(tmp_path / 'data'))
    cfg = e2e.tiny_config(root, str(tmp_path / 'work'))
    cfg_path = str(tmp_path / 'tiny.py')
    cfg.dump(cfg_path)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    ckpt = str(tmp_path / 'model.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)

    feats = tmp_path / 'feats' / 'train.npz'
    out = tmp_path / 'c.png'
    tool.main([cfg_path, ckpt, '--features', str(feats), '--method', 'pca',
               '--show-true-ids', '--out', str(out)])
    assert f'features written to {feats}' in capsys.readouterr().out
    data = np.load(feats)
    num_train = 12 * 4 * 2
    assert data['features'].shape == (num_train, 512)
    np.testing.assert_allclose(
        np.linalg.norm(data['features'], axis=1), 1, atol=1e-5)
    assert data['pids'].shape == (num_train, )
    assert len(np.unique(data['pids'])) == 12
    assert out.is_file()
    # The model's features, in dataset order: image 0 again by hand.
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(cfg.cluster_dataloader)
    batch = model.data_preprocessor(next(iter(loader)), False)
    model.eval()
    with torch.no_grad():
        first = model(batch['inputs'][:1], mode='tensor')[0].numpy()
    np.testing.assert_allclose(data['features'][0], first, atol=1e-5)
