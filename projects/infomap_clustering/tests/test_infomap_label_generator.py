"""InfomapLabelGenerator: registry, config file, recovery of blobs, errors."""
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from sklearn.metrics import adjusted_rand_score

from mmreid_rcl.clustering import BaseLabelGenerator, knn_search
from mmreid_rcl.registry import LABEL_GENERATORS
from projects.infomap_clustering.infomap_clustering import (
    InfomapLabelGenerator, knn_graph_links)

try:
    import infomap  # noqa: F401
except ImportError:  # requirements/optional.txt, installed by `make test`
    if os.environ.get('CI'):
        raise
    pytest.skip(
        'infomap is not installed (pip install -r requirements/optional.txt)',
        allow_module_level=True)

PROJECT = Path(__file__).resolve().parents[1]
CONFIG = PROJECT / 'configs' / \
    'cluster_contrast_infomap_mobilenetv2_cpu_cuhk03.py'


def sphere_blobs(num_blobs=8, per_blob=25, dim=32, spread=0.08, seed=0):
    """Seeded Gaussian blobs around random directions, on the unit sphere."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_blobs, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = np.repeat(np.arange(num_blobs), per_blob)
    x = centres[truth] + spread * rng.normal(size=(len(truth), dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    # Shuffled, so that the order of samples tells nothing.
    order = rng.permutation(len(truth))
    return x[order].astype(np.float32), truth[order]


def test_registered_and_built_from_a_dict():
    assert LABEL_GENERATORS.get('InfomapLabelGenerator') is \
        InfomapLabelGenerator
    gen = LABEL_GENERATORS.build(
        dict(type='InfomapLabelGenerator', k=7, min_size=3))
    assert isinstance(gen, BaseLabelGenerator)
    assert (gen.k, gen.min_size, gen.min_similarity) == (7, 3, 0.5)


def test_built_from_the_project_config_through_custom_imports():
    cfg = Config.fromfile(str(CONFIG))  # runs custom_imports
    assert cfg.custom_imports.imports == [
        'projects.infomap_clustering.infomap_clustering'
    ]
    hook = [h for h in cfg.custom_hooks if h.type == 'ReClusterHook'][0]
    gen = LABEL_GENERATORS.build(hook.label_generator)
    assert isinstance(gen, InfomapLabelGenerator)
    # Everything else is the DBSCAN recipe it is based on.
    base = Config.fromfile(str(
        PROJECT.parents[1] / 'configs' / 'cluster_contrast' /
        'cluster_contrast_mobilenetv2_cpu_cuhk03_previous.py'))
    assert cfg.model == base.model
    assert cfg.train_dataloader == base.train_dataloader
    assert cfg.train_cfg == base.train_cfg


def test_recovers_blobs_on_the_sphere():
    x, truth = sphere_blobs()
    gen = InfomapLabelGenerator(k=10, min_similarity=0.3, min_size=4)
    labels, info = gen(x, return_info=True)
    assert adjusted_rand_score(truth, labels) > 0.9
    assert info['num_clusters'] == 8 and info['num_outliers'] == 0
    assert info['num_links'] > 0 and info['time_total'] >= 0
    # The same features in another order give the same partition.
    perm = np.random.default_rng(1).permutation(len(x))
    again = gen(x[perm])
    assert adjusted_rand_score(labels[perm], again) == 1.0


def test_labels_contiguous_and_small_groups_are_outliers():
    x, truth = sphere_blobs(num_blobs=6, per_blob=20)
    rng = np.random.default_rng(3)
    # Three far, tight pairs: communities of 2, below min_size.
    pairs = rng.normal(size=(3, 32))
    pairs = np.repeat(pairs, 2, axis=0) + 0.01 * rng.normal(size=(6, 32))
    pairs /= np.linalg.norm(pairs, axis=1, keepdims=True)
    feats = np.concatenate([x, pairs.astype(np.float32)])
    labels = InfomapLabelGenerator(k=5, min_similarity=0.3, min_size=3)(
        feats)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels[len(x):], -1)
    clustered = labels[labels >= 0]
    assert set(clustered) == set(range(6))  # 0..C-1, no gaps
    # Numbered in the order of their smallest member.
    firsts = [np.flatnonzero(labels == c)[0] for c in range(6)]
    assert firsts == sorted(firsts)
    assert adjusted_rand_score(truth, labels[:len(x)]) > 0.9
    # With min_size 2 the pairs are clusters of their own.
    labels2 = InfomapLabelGenerator(k=5, min_similarity=0.3, min_size=2)(
        feats)
    assert (labels2 >= 0).all() and labels2.max() == 8


def test_similarity_threshold_isolates_samples():
    x, _ = sphere_blobs(num_blobs=4, per_blob=10)
    # No link survives a threshold above every similarity: all outliers.
    labels, info = InfomapLabelGenerator(
        k=5, min_similarity=0.9999)(x, return_info=True)
    assert info['num_links'] == 0
    np.testing.assert_array_equal(labels, -1)


def test_knn_graph_links_by_hand():
    x = np.array([[1, 0], [0.8, 0.6], [0, 1], [-1, 0]], dtype=np.float32)
    sims, idx = knn_search(x, 3)
    links = knn_graph_links(sims, idx, min_similarity=0.5)
    got = {(int(s), int(t)): round(w, 4) for s, t, w in links}
    # cos(0, 1) = 0.8, cos(1, 2) = 0.6, cos(0, 2) = 0; sample 3 has none.
    assert got == {(0, 1): 0.8, (1, 0): 0.8, (1, 2): 0.6, (2, 1): 0.6}


@pytest.mark.parametrize('kwargs, message', [
    (dict(k=0), 'k must be a positive int'),
    (dict(k=2.5), 'k must be a positive int'),
    (dict(min_size=0), 'min_size must be a positive int'),
    (dict(min_similarity=1.0), r'min_similarity must be a number in \[-1'),
    (dict(min_similarity='high'), 'min_similarity must be a number'),
    (dict(num_trials=0), 'num_trials must be a positive int'),
    (dict(seed=0), r'seed \(InfoMap needs >= 1\)'),
    (dict(knn='kdtree'), "unknown knn method 'kdtree'"),
])
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InfomapLabelGenerator(**kwargs)


def test_too_few_samples():
    x, _ = sphere_blobs(num_blobs=2, per_blob=3)
    with pytest.raises(ValueError, match='more samples than k=15, got N=6'):
        InfomapLabelGenerator()(x)


@pytest.mark.slow
def test_trains_with_infomap_pseudo_labels(tmp_path):
    """Two iterations of cluster contrast on the tiny synthetic data set
    with InfoMap re-clustering through the ReClusterHook."""
    spec = importlib.util.spec_from_file_location(
        'e2e_utils', PROJECT.parents[1] / 'tests' / 'test_engine' /
        'e2e_utils.py')
    e2e = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(e2e)
    make_tiny_dataset, tiny_config = e2e.make_tiny_dataset, e2e.tiny_config
    from mmengine.runner import Runner

    from mmreid_rcl.utils import register_all_modules
    root = make_tiny_dataset(str(tmp_path / 'data'))
    cfg = tiny_config(root, str(tmp_path / 'run'), max_epochs=1, num_iters=2)
    cfg.custom_imports = dict(
        imports=['projects.infomap_clustering.infomap_clustering'],
        allow_failed_imports=False)
    cfg.custom_hooks[0]['label_generator'] = dict(
        type='InfomapLabelGenerator', k=4, min_similarity=0.5, min_size=2)
    cfg.custom_hooks[0]['cluster_after_train'] = False
    register_all_modules()
    runner = Runner.from_cfg(cfg)
    hook = [h for h in runner.hooks if type(h).__name__ == 'ReClusterHook']
    assert isinstance(hook[0].label_generator, InfomapLabelGenerator)
    runner.train()
    labels = runner.model.pseudo_labels.numpy()
    assert labels.shape == (len(runner.train_dataloader.dataset), )
    num_clusters = int(labels.max()) + 1
    assert num_clusters >= 4  # a batch draws 4 pseudo identities
    assert set(labels[labels >= 0]) == set(range(num_clusters))
    assert runner.message_hub.get_scalar('train/clusters').current() == \
        num_clusters


def test_messages_name_its_own_settings():
    gen = InfomapLabelGenerator(k=10, min_size=3)
    assert gen.describe() == repr(gen)
    assert 'min_size=3' in gen.describe()
    assert gen.explain_few_clusters() == (
        'lower min_size or min_similarity of the label generator')
