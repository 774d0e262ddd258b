import numpy as np
import pytest
import torch

from mmreid_rcl.structures import ReIDDataSample


def test_meta_fields_through_set_identity_and_set_metainfo():
    sample = ReIDDataSample().set_identity(
        np.int64(7), 2, sample_idx=5, is_query=True)
    assert (sample.person_id, sample.camera_id, sample.sample_idx) == (7, 2,
                                                                       5)
    assert sample.is_query is True
    assert isinstance(sample.person_id, int)
    sample.set_metainfo(dict(person_id=9))
    assert sample.person_id == 9
    with pytest.raises(TypeError, match='person_id'):
        ReIDDataSample().set_identity('7', 0)
    with pytest.raises(TypeError, match='camera_id'):
        ReIDDataSample().set_identity(1, 1.5)


def test_data_fields_pseudo_label_and_features():
    sample = ReIDDataSample().set_identity(1, 0)
    assert sample.get_pseudo_label(-1) == -1
    sample.pseudo_label = torch.tensor(3)
    assert sample.pseudo_label == 3 and sample.get_pseudo_label() == 3
    sample.features = np.ones(4, dtype=np.float32)
    assert isinstance(sample.features, torch.Tensor)
    assert sample.features.shape == (4, )
    with pytest.raises(ValueError, match='1-D'):
        sample.features = torch.ones(2, 2)
    del sample.pseudo_label
    assert sample.get_pseudo_label() is None
    # Meta and data fields survive a copy, as batches are collated.
    copy = sample.clone()
    assert copy.person_id == 1 and torch.equal(copy.features,
                                               sample.features)
