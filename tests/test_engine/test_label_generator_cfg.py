"""label_generator_cfg: the generator settings of a config's
ReClusterHook."""
from pathlib import Path

import pytest
from mmengine.config import Config

from mmreid_rcl.engine.hooks import ReClusterHook, label_generator_cfg

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
GEN = dict(type='DBSCANLabelGenerator', eps=0.4, min_samples=4)


def test_found_in_custom_hooks():
    cfg = Config(
        dict(custom_hooks=[
            dict(type='EvaluateBeforeTrainHook'),
            dict(type='ReClusterHook', label_generator=GEN),
        ]))
    found = label_generator_cfg(cfg)
    assert found == GEN
    # A copy: changing it leaves the config alone.
    found['eps'] = 0.9
    assert cfg.custom_hooks[1].label_generator.eps == 0.4
    # Scoped names and the class itself are the hook too.
    for hook_type in ('mmreid_rcl.ReClusterHook', ReClusterHook):
        assert label_generator_cfg(
            dict(custom_hooks=[dict(type=hook_type,
                                    label_generator=GEN)])) == GEN


def test_hook_default_and_no_hook():
    assert label_generator_cfg(
        dict(custom_hooks=[dict(type='ReClusterHook')])) == dict(
            type='DBSCANLabelGenerator')
    assert label_generator_cfg(dict(custom_hooks=[])) is None
    assert label_generator_cfg(dict()) is None
    assert label_generator_cfg(
        dict(custom_hooks=[dict(type='EvaluateBeforeTrainHook')])) is None


def test_shipped_configs():
    semi = Config.fromfile(
        CONFIGS / 'semi' / 'cluster_contrast_mobilenetv2_cpu_cuhk03_semi.py')
    assert label_generator_cfg(semi)['type'] == 'DBSCANLabelGenerator'
    supervised = Config.fromfile(
        CONFIGS / 'supervised' / 'supervised_mobilenetv2_cpu_cuhk03.py')
    assert label_generator_cfg(supervised) is None


def test_errors():
    hook = dict(type='ReClusterHook', label_generator=GEN)
    with pytest.raises(ValueError, match='holds 2 ReClusterHook entries'):
        label_generator_cfg(dict(custom_hooks=[hook, hook]))
    with pytest.raises(ValueError, match='expected a config dict'):
        label_generator_cfg(
            dict(custom_hooks=[dict(type='ReClusterHook',
                                    label_generator=object())]))


def test_build_label_generator():
    from mmreid_rcl.clustering import DBSCANLabelGenerator
    from mmreid_rcl.engine.hooks import build_label_generator
    from mmreid_rcl.utils import register_all_modules
    register_all_modules()
    gen = build_label_generator(
        dict(custom_hooks=[dict(type='ReClusterHook', label_generator=GEN)]))
    assert isinstance(gen, DBSCANLabelGenerator) and gen.eps == 0.4
    with pytest.raises(ValueError,
                       match='^x.py has no ReClusterHook in custom_hooks: '
                       'no label generator to cluster with$'):
        build_label_generator(dict(custom_hooks=[]), source='x.py')
