"""Supervised training and warm-started unsupervised training, end to end.

The real configs (configs/supervised/, configs/semi/) run on the tiny
synthetic dataset (MobileNetV2 at 64x32, 2 iterations an epoch): the
supervised model trains on the labelled half of the train ids, then
cluster contrast starts from its checkpoint on the unlabelled half and is
resumed from its own checkpoint. The ResNet-50 and domain-adaptation
configs are built (model and settings), not trained.
"""
from pathlib import Path

import pytest
import torch
from e2e_utils import make_tiny_dataset
from mmengine.config import Config
from mmengine.runner import Runner

from mmreid_rcl.registry import DATASETS, MODELS
from mmreid_rcl.utils import register_all_modules
from mmreid_rcl.utils.run_logs import epoch_summary

REPO = Path(__file__).resolve().parents[2]
SUPERVISED_CPU = REPO / 'configs' / 'supervised' / \
    'supervised_mobilenetv2_cpu_cuhk03.py'
SEMI = sorted((REPO / 'configs' / 'semi').glob('*.py'))
SUPERVISED_R50 = sorted((REPO / 'configs' / 'supervised').glob('*_r50_*.py'))
UDA = sorted((REPO / 'configs' / 'uda').glob('*.py'))
LOADERS = ('train_dataloader', 'cluster_dataloader', 'val_dataloader',
           'test_dataloader')


@pytest.fixture(scope='module')
def tiny_root(tmp_path_factory):
    return make_tiny_dataset(str(tmp_path_factory.mktemp('tiny') / 'data'))


@pytest.fixture(scope='module')
def imagenet_checkpoint(tmp_path_factory, mobilenetv2_weights):
    """The converted ImageNet MobileNetV2 (random weights give one cluster
    on the tiny set)."""
    from mmreid_rcl.models.backbones import load_mobilenetv2_source
    path = tmp_path_factory.mktemp('weights') / 'mnv2.pth'
    torch.save(
        dict(state_dict=load_mobilenetv2_source(str(mobilenetv2_weights))),
        path)
    return str(path)


def _shrink(cfg: Config, data_root: str, work_dir: str,
            checkpoint: str) -> Config:
    """Tiny data, 2 iterations, one epoch; settings of the config kept."""
    cfg.work_dir = work_dir
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    for key in LOADERS:
        loader = cfg.get(key)
        if loader is None:
            continue
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
    cfg.custom_hooks = [
        h for h in cfg.get('custom_hooks', [])
        if h['type'] != 'EvaluateBeforeTrainHook'
    ]
    for hook in cfg.custom_hooks:
        if hook['type'] == 'ReClusterHook':
            hook['label_generator'].update(min_samples=2, k1=6, k2=2)
            hook['cluster_after_train'] = False
    cfg.train_cfg.max_epochs = 1
    cfg.train_cfg.val_interval = 1
    cfg.default_hooks.logger.interval = 1
    cfg.log_level = 'WARNING'
    return cfg


def _num_ids(loader_cfg) -> int:
    register_all_modules()
    cfg = dict(loader_cfg.dataset)
    cfg['pipeline'] = []
    return DATASETS.build(cfg).metainfo['num_ids']


@pytest.fixture(scope='module')
def supervised_run(tiny_root, imagenet_checkpoint, tmp_path_factory):
    """The supervised CPU config on the labelled half of the tiny ids."""
    work_dir = str(tmp_path_factory.mktemp('supervised'))
    cfg = _shrink(
        Config.fromfile(str(SUPERVISED_CPU)), tiny_root, work_dir,
        imagenet_checkpoint)
    cfg.model.head.num_classes = _num_ids(cfg.train_dataloader)
    register_all_modules()
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner, work_dir


def test_supervised_config_trains_on_the_labelled_ids(supervised_run):
    runner, work_dir = supervised_run
    assert type(runner.model).__name__ == 'SupervisedReID'
    dataset = runner.train_dataloader.dataset
    ids = dataset.get_person_ids()
    # The labelled half, relabelled 0..C-1; the sampler drew true ids.
    assert dataset.id_subset['part'] == 'labelled'
    assert 0 < dataset.metainfo['num_ids'] < 12
    assert set(ids.tolist()) == set(range(dataset.metainfo['num_ids']))
    sampler = runner.train_dataloader.sampler
    assert sampler.labels.tolist() == ids.tolist()
    hub = runner.message_hub
    for key in ('train/loss_cls', 'train/loss_triplet', 'train/acc_cls'):
        assert torch.isfinite(torch.tensor(hub.get_scalar(key).current()))
    # Evaluated by the ReIDMetric on the (whole) test split.
    summary = epoch_summary(work_dir)
    assert 0.0 <= summary['epochs'][-1]['mAP'] <= 100.0
    assert (Path(work_dir) / 'epoch_1.pth').is_file()


def test_inferencer_serves_the_supervised_checkpoint(supervised_run,
                                                     tiny_root):
    from mmreid_rcl.apis import ReIDInferencer
    runner, work_dir = supervised_run
    inferencer = ReIDInferencer(
        runner.cfg, str(Path(work_dir) / 'epoch_1.pth'), batch_size=16)
    query = sorted((Path(tiny_root) / 'query').glob('*.jpg'))[:3]
    feats = inferencer.extract([str(p) for p in query])
    assert feats.shape == (3, 1280)
    model = runner.model.eval()
    batch = model.data_preprocessor(
        runner.val_dataloader.collate_fn(
            [inferencer.pipeline(dict(img_path=str(p))) for p in query]),
        False)
    with torch.no_grad():
        expected = model.extract_feat(batch['inputs']).numpy()
    assert abs(feats - expected).max() < 1e-4


@pytest.mark.parametrize('path', SEMI, ids=lambda p: p.stem)
def test_semi_config_warm_starts_on_the_unlabelled_ids(
        path, supervised_run, tiny_root, imagenet_checkpoint, tmp_path):
    supervised, sup_dir = supervised_run
    sup_ckpt = str(Path(sup_dir) / 'epoch_1.pth')
    cfg = _shrink(
        Config.fromfile(str(path)), tiny_root, str(tmp_path / 'a'),
        imagenet_checkpoint)
    assert cfg.model.init_cfg.type == 'WarmStart'
    cfg.model.init_cfg.checkpoint = sup_ckpt
    register_all_modules()
    runner = Runner.from_cfg(cfg)
    seen = _watch_reclustering(runner)
    runner.train()
    # The first clustering ran on the supervised backbone and neck.
    sup_state = torch.load(sup_ckpt, weights_only=False)['state_dict']
    first = seen[0]
    for key, value in first.items():
        torch.testing.assert_close(value, sup_state[key], rtol=0, atol=0)
    # It trained on the unlabelled half: disjoint from the labelled one.
    train_set = runner.train_dataloader.dataset
    lab = {
        info['img_path'] for info in (
            supervised.train_dataloader.dataset.get_data_info(i)
            for i in range(len(supervised.train_dataloader.dataset)))
    }
    unl = {
        train_set.get_data_info(i)['img_path']
        for i in range(len(train_set))
    }
    assert lab.isdisjoint(unl) and len(lab) + len(unl) == 96
    assert runner.model.pseudo_labels.numel() == len(unl)

    # --resume continues from the run's own checkpoint, not the warm start.
    own = str(tmp_path / 'a' / 'epoch_1.pth')
    cfg_b = _shrink(
        Config.fromfile(str(path)), tiny_root, str(tmp_path / 'a'),
        imagenet_checkpoint)
    cfg_b.model.init_cfg.checkpoint = sup_ckpt
    cfg_b.train_cfg.max_epochs = 2
    # What `tools/train.py --resume PATH` sets.
    cfg_b.resume = True
    cfg_b.load_from = own
    resumed = Runner.from_cfg(cfg_b)
    seen_b = _watch_reclustering(resumed)
    resumed.train()
    own_state = torch.load(own, weights_only=False)['state_dict']
    for key, value in seen_b[0].items():
        torch.testing.assert_close(value, own_state[key], rtol=0, atol=0)
    assert not torch.equal(own_state['backbone.features.0.0.weight'],
                           sup_state['backbone.features.0.0.weight'])


def _watch_reclustering(runner):
    """Record the backbone and neck weights each re-clustering sees."""
    hook = [h for h in runner.hooks if type(h).__name__ == 'ReClusterHook']
    seen = []
    original = hook[0].recluster

    def recluster(r):
        seen.append({
            k: v.detach().clone()
            for k, v in r.model.state_dict().items()
            if k.startswith(('backbone.', 'neck.'))
        })
        return original(r)

    hook[0].recluster = recluster
    return seen


def _model_part(cfg, key):
    part = dict(cfg.model[key])
    part.pop('init_cfg', None)
    return part


@pytest.mark.parametrize('path', SUPERVISED_R50, ids=lambda p: p.stem)
def test_supervised_r50_configs_build(path):
    cfg = Config.fromfile(str(path))
    expected = {'market1501': 751, 'dukemtmc': 702, 'msmt17': 1041}
    assert cfg.model.head.num_classes == expected[path.stem.split('_')[-1]]
    assert cfg.train_dataloader.dataset.relabel is True
    assert cfg.train_dataloader.sampler.label_key == 'person_id'
    assert cfg.train_dataloader.sampler.num_instances == 4
    assert cfg.train_dataloader.batch_size == 64
    assert cfg.train_cfg.max_epochs == 120
    assert cfg.model.head.loss_cls.epsilon == 0.1
    assert cfg.model.head.loss_triplet.margin == 0.3
    steps = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert 'RandomErasing' in steps
    cfg.model.backbone.init_cfg = None  # no download here
    register_all_modules()
    model = MODELS.build(cfg.model)
    assert model.head.classifier.weight.shape == (
        cfg.model.head.num_classes, 2048)


@pytest.mark.parametrize('path', UDA, ids=lambda p: p.stem)
def test_uda_configs_pair_a_source_checkpoint_with_a_target(path):
    cfg = Config.fromfile(str(path))
    source, target = path.stem.split('_r50_')[1].split('_to_')
    sup = Config.fromfile(
        str(REPO / 'configs' / 'supervised' / f'supervised_r50_{source}.py'))
    assert cfg.model.init_cfg.type == 'WarmStart'
    assert cfg.model.init_cfg.checkpoint == \
        f'checkpoints/supervised_r50_{source}.pth'
    # The target's data; the source's backbone and neck, so the checkpoint
    # fits.
    names = {'market1501': 'Market1501Dataset', 'dukemtmc': 'DukeMTMCDataset'}
    for key in ('train_dataloader', 'cluster_dataloader', 'val_dataloader'):
        assert cfg[key].dataset.type == names[target]
    assert sup.train_dataloader.dataset.type == names[source]
    for key in ('backbone', 'neck'):
        assert _model_part(cfg, key) == _model_part(sup, key)
    cfg.model.backbone.init_cfg = None
    register_all_modules()
    assert type(MODELS.build(cfg.model)).__name__ == 'UnsupervisedReID'


@pytest.mark.parametrize('path', SEMI, ids=lambda p: p.stem)
def test_semi_configs_match_the_supervised_config(path):
    cfg = Config.fromfile(str(path))
    sup = Config.fromfile(str(SUPERVISED_CPU))
    for key in ('backbone', 'neck'):
        assert _model_part(cfg, key) == _model_part(sup, key)
    lab = sup.train_dataloader.dataset.id_subset
    for key in ('train_dataloader', 'cluster_dataloader'):
        unl = cfg[key].dataset.id_subset
        assert unl == dict(lab, part='unlabelled')
    assert 'id_subset' not in cfg.val_dataloader.dataset
