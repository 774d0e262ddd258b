import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from mmreid_rcl.clustering import BaseLabelGenerator, DBSCANLabelGenerator
from mmreid_rcl.registry import LABEL_GENERATORS


def easy_features(num_ids=12, per_id=25, dim=64, seed=0):
    """Tight, well-separated clusters: the planted ids are the answer."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_ids, dim))
    ids = rng.permutation(np.repeat(np.arange(num_ids), per_id))
    x = centres[ids] + 0.3 * rng.standard_normal((len(ids), dim))
    return x.astype(np.float32), ids


def test_build_from_config():
    gen = LABEL_GENERATORS.build(
        dict(type='DBSCANLabelGenerator', eps=0.5, knn='hnsw'))
    assert isinstance(gen, DBSCANLabelGenerator)
    assert (gen.eps, gen.min_samples, gen.k1, gen.k2) == (0.5, 4, 30, 6)
    assert 'eps=0.5' in repr(gen)


def test_finds_planted_clusters():
    x, ids = easy_features()
    gen = LABEL_GENERATORS.build(dict(type='DBSCANLabelGenerator'))
    labels, info = gen(x, return_info=True)
    assert labels.dtype == np.int64 and labels.shape == ids.shape
    assert (labels >= 0).all()
    assert adjusted_rand_score(ids, labels) == 1.0
    # Clusters are numbered by their smallest member.
    firsts = [np.nonzero(labels == c)[0][0] for c in range(12)]
    assert firsts == sorted(firsts)
    assert info['num_clusters'] == 12 and info['num_outliers'] == 0
    for key in ('time_knn', 'time_jaccard', 'time_dbscan', 'time_total'):
        assert info[key] >= 0
    # The default search gives exact neighbours (here by brute force: the
    # problem is too small for the projection to pay off).
    assert info['knn_method'] == 'auto'
    assert info['knn_choice'].startswith('auto: exact (N=300 below')
    assert info['knn_path'].startswith('brute force')
    # A tensor of unnormalised float64 features gives the same labels.
    again = gen(torch.from_numpy(x.astype(np.float64) * 2))
    np.testing.assert_array_equal(again, labels)


def test_another_generator_registers_beside():

    class EveryoneTogether(BaseLabelGenerator):

        def generate(self, features):
            return np.zeros(len(features), dtype=np.int64), {}

    name = 'EveryoneTogetherLabelGenerator'
    LABEL_GENERATORS.register_module(name=name, module=EveryoneTogether)
    try:
        gen = LABEL_GENERATORS.build(dict(type=name))
        labels, info = gen(np.eye(5), return_info=True)
        np.testing.assert_array_equal(labels, 0)
        assert info == dict(num_clusters=1, num_outliers=0)
        assert 'DBSCANLabelGenerator' in LABEL_GENERATORS.module_dict
    finally:
        LABEL_GENERATORS.module_dict.pop(name)


def test_interface_is_abstract():
    with pytest.raises(TypeError):
        BaseLabelGenerator()


def test_clear_errors():
    with pytest.raises(ValueError, match='eps must be in'):
        DBSCANLabelGenerator(eps=1.0)
    with pytest.raises(ValueError, match='min_samples'):
        DBSCANLabelGenerator(min_samples=0)
    with pytest.raises(ValueError, match='k2 <= k1'):
        DBSCANLabelGenerator(k1=5, k2=6)
    with pytest.raises(ValueError, match='unknown knn method'):
        DBSCANLabelGenerator(knn='annoy')
    with pytest.raises(ValueError, match='dim must be a positive int'):
        DBSCANLabelGenerator(knn=dict(type='hnsw', dim=0))
    gen = DBSCANLabelGenerator()
    with pytest.raises(ValueError, match='more samples than k1=30'):
        gen(np.random.default_rng(0).standard_normal((30, 8)))
    with pytest.raises(ValueError, match='2-D'):
        gen(np.ones(40))


def test_generators_word_their_own_messages():
    gen = DBSCANLabelGenerator(eps=0.5, min_samples=3, camera_penalty=0.1)
    assert gen.describe() == ('DBSCANLabelGenerator(eps=0.5, min_samples=3, '
                              'k1=30, k2=6, camera_penalty=0.1)')
    assert gen.explain_few_clusters() == (
        'raise eps or lower min_samples of the label generator')

    class Fixed(BaseLabelGenerator):

        def generate(self, features):
            return np.zeros(len(features), dtype=np.int64), {}

        def __repr__(self):
            return 'Fixed(size=3)'

    # The defaults: the repr, and advice that names no setting.
    assert Fixed().describe() == 'Fixed(size=3)'
    assert 'raise eps' not in Fixed().explain_few_clusters()
