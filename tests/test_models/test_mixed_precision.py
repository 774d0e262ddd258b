"""Mixed precision: the memory, its update and the contrastive logits stay
float32 under bfloat16 autocast, and AMP training steps run.

bfloat16 is emulated on many CPUs (slow), so the models here are tiny: a
ResNet-18 cut after its first stage (64 channels) on 64x32 images.
"""
import importlib.util
from pathlib import Path

import mmengine.optim.optimizer.amp_optimizer_wrapper as amp_wrapper
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.runner import Runner

from mmreid_rcl.registry import MODELS
from mmreid_rcl.utils import register_all_modules

_spec = importlib.util.spec_from_file_location(
    'e2e_utils',
    Path(__file__).resolve().parents[1] / 'test_engine' / 'e2e_utils.py')
_e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_e2e)
make_tiny_dataset, tiny_config = _e2e.make_tiny_dataset, _e2e.tiny_config

BF16 = dict(device_type='cpu', dtype=torch.bfloat16)


@pytest.mark.parametrize('update', [
    'MeanMemoryUpdate', 'HardMemoryUpdate', 'CentralMemoryUpdate'
])
def test_memory_stays_float32_under_autocast(update):
    register_all_modules()
    memory = MODELS.build(
        dict(
            type='ClusterMemory',
            feat_dim=16,
            momentum=0.5,
            update=dict(type=update)))
    gen = torch.Generator().manual_seed(0)
    feats = F.normalize(torch.randn(12, 16, generator=gen), dim=1)
    labels = torch.arange(12) % 4
    memory.initialise(feats, labels)
    reference = MODELS.build(
        dict(
            type='ClusterMemory',
            feat_dim=16,
            momentum=0.5,
            update=dict(type=update)))
    reference.initialise(feats, labels)

    batch = F.normalize(torch.randn(8, 16, generator=gen), dim=1)
    half = batch.bfloat16()
    batch_labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    with torch.autocast(**BF16):
        logits = memory.logits(half)
        memory.update(half, batch_labels)
    assert logits.dtype == torch.float32
    # Exactly the float32 product of the (rounded) features.
    expected = half.float() @ reference.prototypes.t() / 0.05
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    reference.update(half.float(), batch_labels)
    assert memory.prototypes.dtype == torch.float32
    torch.testing.assert_close(
        memory.prototypes, reference.prototypes, rtol=1e-5, atol=1e-6)


def _tiny_amp_config(data_root, work_dir, rcl):
    cfg = tiny_config(data_root, work_dir, max_epochs=1, num_iters=2)
    cfg.model.backbone.out_indices = (0, )
    cfg.model.neck.in_channels = 64
    cfg.model.head.memory.feat_dim = 64
    if rcl:
        cfg.model.type = 'RCL'
        cfg.model.aggregator = dict(
            type='ClusterAttentionAggregator',
            embed_dims=64,
            num_heads=4,
            zero_init_out=False)
    cfg.optim_wrapper = dict(
        type='AmpOptimWrapper',
        dtype='bfloat16',
        optimizer=dict(type='Adam', lr=3.5e-4, weight_decay=5e-4))
    cfg.default_hooks.checkpoint = None
    return cfg


@pytest.fixture(scope='module')
def tiny_root(tmp_path_factory):
    return make_tiny_dataset(str(tmp_path_factory.mktemp('amp') / 'data'))


@pytest.mark.parametrize('rcl', [False, True], ids=['cluster_contrast',
                                                    'rcl'])
def test_amp_training_steps_bfloat16(tiny_root, tmp_path, monkeypatch, rcl):
    """mmengine's AmpOptimWrapper, bfloat16, through the Runner.

    The wrapper refuses to start without a GPU; its check is lifted here,
    and its loss scaler (torch's GradScaler) turns itself off without CUDA,
    so the step is the plain optimizer step in the wrapper's autocast
    context (``torch.autocast('cpu', torch.bfloat16)``).
    """
    monkeypatch.setattr(amp_wrapper, 'is_cuda_available', lambda: True)
    register_all_modules()
    runner = Runner.from_cfg(
        _tiny_amp_config(tiny_root, str(tmp_path / 'work'), rcl))
    model = runner.model
    seen = []
    model.backbone.register_forward_hook(
        lambda module, args, out: seen.append(
            (torch.is_grad_enabled(), out[0].dtype)))
    memory = model.head.memory
    logits_dtypes = []

    def logits(feats, _logits=memory.logits):
        out = _logits(feats)
        logits_dtypes.append(out.dtype)
        return out

    monkeypatch.setattr(memory, 'logits', logits)
    first = next(model.backbone.parameters()).detach().clone()
    runner.train()
    assert type(runner.optim_wrapper).__name__ == 'AmpOptimWrapper'

    # The training steps ran in bfloat16, re-clustering in float32.
    assert (True, torch.bfloat16) in seen
    assert all(dtype == torch.float32 for grad, dtype in seen if not grad)
    # The contrastive logits (and the SAA ones of RCL) were float32.
    assert len(logits_dtypes) == (4 if rcl else 2)
    assert set(logits_dtypes) == {torch.float32}
    assert memory.prototypes.dtype == torch.float32
    assert memory.num_clusters > 0
    assert bool(torch.isfinite(memory.prototypes).all())
    torch.testing.assert_close(
        memory.prototypes.norm(dim=1),
        torch.ones(memory.num_clusters),
        rtol=0,
        atol=1e-5)
    keys = ['loss_cc'] + (['loss_saa'] if rcl else [])
    for key in keys:
        loss = runner.message_hub.get_scalar(f'train/{key}').current()
        assert torch.isfinite(torch.tensor(loss)), key
    # The weights moved and stayed float32 and finite.
    after = next(model.backbone.parameters()).detach()
    assert after.dtype == torch.float32 and bool(torch.isfinite(after).all())
    assert not torch.equal(first, after)


REPO = Path(__file__).resolve().parents[2]
R50_CONFIGS = sorted((REPO / 'configs' / 'cluster_contrast').glob('*r50*.py')
                     ) + sorted((REPO / 'configs' / 'rcl').glob('*r50*.py'))


@pytest.mark.parametrize('path', R50_CONFIGS, ids=lambda p: p.stem)
def test_gpu_r50_configs_train_in_bfloat16(path):
    cfg = Config.fromfile(str(path))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    # The schedule's optimizer is kept.
    assert cfg.optim_wrapper.optimizer == dict(
        type='Adam', lr=3.5e-4, weight_decay=5e-4)
