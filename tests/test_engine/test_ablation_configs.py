"""Every ablation config trains for a few iterations on tiny data."""
import glob
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from e2e_utils import make_tiny_dataset
from mmengine.config import Config
from mmengine.runner import Runner

from mmreid_rcl.utils import register_all_modules
from mmreid_rcl.utils.run_logs import epoch_summary

REPO = Path(__file__).resolve().parents[2]
ABLATIONS = sorted(
    glob.glob(str(REPO / 'configs' / 'rcl' / 'ablation' / '*.py')))
# The CPU recipes of RCL outside the ablation's folder.
RCL_CPU = sorted(glob.glob(str(REPO / 'configs' / 'rcl' / '*_cpu_*.py')))


@pytest.fixture(scope='module')
def tiny_root(tmp_path_factory):
    return make_tiny_dataset(str(tmp_path_factory.mktemp('tiny') / 'data'))


@pytest.fixture(scope='module')
def imagenet_checkpoint(tmp_path_factory, mobilenetv2_weights):
    """The ImageNet MobileNetV2 of ../shared, converted (random weights
    give near-identical features on the tiny set: one cluster)."""
    import torch

    from mmreid_rcl.models.backbones import load_mobilenetv2_source
    path = tmp_path_factory.mktemp('weights') / 'mnv2.pth'
    torch.save(
        dict(state_dict=load_mobilenetv2_source(str(mobilenetv2_weights))),
        path)
    return str(path)


def _shrink(cfg: Config, data_root: str, work_dir: str,
            checkpoint: str) -> Config:
    cfg.work_dir = work_dir
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    for key in ('train_dataloader', 'cluster_dataloader', 'val_dataloader',
                'test_dataloader'):
        loader = cfg[key]
        loader.num_workers = 0
        loader.persistent_workers = False
        loader.dataset.type = 'Market1501Dataset'
        loader.dataset.data_root = data_root
        for step in loader.dataset.pipeline:
            if step['type'] == 'Resize':
                step['scale'] = (32, 64)
    cfg.train_dataloader.batch_size = 8
    cfg.train_dataloader.sampler.batch_size = 8
    cfg.train_dataloader.sampler.num_iters = 2
    hook = cfg.custom_hooks[0]
    assert hook['type'] == 'ReClusterHook'
    hook['label_generator'].update(min_samples=2, k1=6, k2=2)
    hook['cluster_after_train'] = False
    # The initial evaluation is tested elsewhere; keep this test short.
    cfg.custom_hooks = [
        h for h in cfg.custom_hooks if h['type'] != 'EvaluateBeforeTrainHook'
    ]
    cfg.train_cfg.max_epochs = 1
    cfg.default_hooks.logger.interval = 1
    cfg.log_level = 'WARNING'
    return cfg


def test_all_ablations_are_there():
    names = {Path(p).name.split('_')[0] for p in ABLATIONS}
    assert names == {'baseline', 'csa', 'hps', 'hard', 'rcl', 'central'}


@pytest.mark.parametrize(
    'path', ABLATIONS + RCL_CPU,
    ids=lambda p: f'{Path(p).parent.name}/{Path(p).stem}')
def test_ablation_config_trains(path, tiny_root, tmp_path,
                                imagenet_checkpoint):
    cfg = _shrink(
        Config.fromfile(path), tiny_root, str(tmp_path), imagenet_checkpoint)
    register_all_modules()
    runner = Runner.from_cfg(cfg)
    runner.train()
    model = runner.model
    assert model.pseudo_labels.numel() == 96
    assert model.head.memory.num_clusters == int(model.pseudo_labels.max()) + 1
    has_aggregator = getattr(model, 'aggregator', None) is not None
    assert has_aggregator == (Path(path).name.split('_')[0]
                              in {'csa', 'hps', 'rcl'})
    # The run's validation after its last epoch reached the scalar logs.
    summary = epoch_summary(str(tmp_path))
    assert 0.0 <= summary['epochs'][-1]['mAP'] <= 100.0
    # With an aggregator and a data set that knows its true ids, every
    # re-clustering logs how well the weights see impostors.
    first = summary['epochs'][0]
    assert ('cluster_pick_any' in first) == has_aggregator
    if has_aggregator:
        assert 0.0 <= first['cluster_pick_hps'] <= 1.0
        assert 0.0 < first['cluster_hps_eligible'] <= 1.0


def test_hps_diagnostics_runs_on_a_trained_rcl(tiny_root, tmp_path,
                                               imagenet_checkpoint):
    """tools/analysis/hps_diagnostics.py end to end on a tiny RCL run."""
    path = str(REPO / 'configs' / 'rcl' / 'ablation' /
               'rcl_mobilenetv2_cpu_cuhk03.py')
    cfg = _shrink(
        Config.fromfile(path), tiny_root, str(tmp_path), imagenet_checkpoint)
    register_all_modules()
    Runner.from_cfg(cfg).train()
    spec = importlib.util.spec_from_file_location(
        'hps_diagnostics', REPO / 'tools' / 'analysis' / 'hps_diagnostics.py')
    hps_diagnostics = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hps_diagnostics)
    out = tmp_path / 'diag.json'
    hps_diagnostics.main([
        str(tmp_path / Path(path).name),
        str(tmp_path / 'epoch_1.pth'), '--use-saved-labels', '--k', '2',
        '--sets-per-cluster', '3', '--json', str(out)
    ])
    result = json.loads(out.read_text())
    # 3 sets of every cluster with at least 2 members.
    assert result['num_sets'] > 0 and result['num_sets'] % 3 == 0
    for key in ('trained', 'trained_weights_on_inputs', 'plain_mean',
                'reference'):
        assert np.isfinite(result['set_loss'][key])
        assert result['set_loss'][key] > 0
    rates = result['pick_impostor_rate']
    assert 0.0 <= rates['hps'] <= 1.0 and 0.0 <= rates['central'] <= 1.0
