"""Feature families for clustering benchmarks (apis.feature_families)."""
import numpy as np
import pytest

from mmreid_rcl.apis import save_features
from mmreid_rcl.apis.feature_families import (FAMILIES, family_name,
                                              load_family, make_features)


def test_generated_families_are_seeded_unit_rows():
    for family in FAMILIES:
        x, ids = load_family(family, 300, 256, None, 0)
        again, _ = load_family(family, 300, 256, None, 0)
        other, _ = load_family(family, 300, 256, None, 1)
        assert x.shape == (300, 256) and x.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
        np.testing.assert_array_equal(x, again)
        assert not np.array_equal(x, other)
        assert ids.shape == (300, ) and family_name(family) == family
        # About 17 images an identity (Market-1501's ratio) by default.
        assert len(np.unique(ids)) == round(300 / (12936 / 751))


def test_synthetic_identities_are_closer_than_strangers():
    x, ids = make_features(600, 256, seed=0)
    sim = x @ x.T
    same = ids[:, None] == ids[None, :]
    np.fill_diagonal(same, False)
    strangers = ids[:, None] != ids[None, :]
    assert sim[same].mean() > sim[strangers].mean() + 0.3


def test_a_feature_file_family(tmp_path):
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((50, 8)).astype(np.float32)
    path = str(tmp_path / 'views.npz')
    save_features(path, feats, [f'{i}.jpg' for i in range(50)],
                  pids=np.arange(50) // 5)
    x, ids = load_family(path, 40, 2048, None, 0)
    np.testing.assert_allclose(
        x, feats[:40] / np.linalg.norm(feats[:40], axis=1, keepdims=True),
        rtol=1e-6)
    np.testing.assert_array_equal(ids, np.arange(40) // 5)
    assert family_name(path) == 'real features views.npz'
    with pytest.raises(ValueError, match='holds 50 rows, fewer than N=60'):
        load_family(path, 60, 2048, None, 0)


def test_synthetic_features_need_the_latent_rank():
    with pytest.raises(ValueError, match='dim >= the latent rank 256'):
        make_features(100, dim=64)
