"""ReClusterHook: what it says when the clustering leaves too few
clusters."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mmreid_rcl.clustering import BaseLabelGenerator
from mmreid_rcl.engine.hooks import ReClusterHook
from mmreid_rcl.engine.hooks import recluster_hook as module


class _AllOutliers(BaseLabelGenerator):

    def generate(self, features):
        return np.full(len(features), -1, dtype=np.int64), {}

    def __repr__(self):
        return '_AllOutliers(k=5)'


def _recluster_error(hook, monkeypatch, num=6):
    """The message of a re-clustering of ``num`` far-apart features for
    batches of 4 identities."""
    feats = torch.eye(num, 8)
    monkeypatch.setattr(module, 'extract_dataset_features',
                        lambda model, loader, n: feats)
    hook._dataloader = SimpleNamespace(dataset=[None] * num)
    sampler = SimpleNamespace(batch_size=16, num_instances=4)
    runner = SimpleNamespace(
        model=torch.nn.Module(),
        epoch=0,
        train_dataloader=SimpleNamespace(
            sampler=sampler, dataset=object()))
    with pytest.raises(RuntimeError) as exc:
        hook.recluster(runner)
    return str(exc.value)


def test_too_few_clusters_advice_comes_from_the_generator(monkeypatch):
    hook = ReClusterHook(
        label_generator=dict(
            type='DBSCANLabelGenerator', eps=0.2, min_samples=2, k1=3,
            k2=1, memory_check=False))
    assert _recluster_error(hook, monkeypatch) == (
        'clustering gave 0 clusters (6 of 6 images are outliers) with '
        'DBSCANLabelGenerator(eps=0.2, min_samples=2, k1=3, k2=1, '
        'camera_penalty=0.0), but a batch needs 4 identities: raise eps '
        'or lower min_samples of the label generator, or lower the '
        'batch\'s number of identities')
    text = _recluster_error(
        ReClusterHook(label_generator=_AllOutliers()), monkeypatch)
    assert 'with _AllOutliers(k=5), but a batch needs 4 identities' in text
    assert 'raise eps' not in text
    assert text.endswith('or lower the batch\'s number of identities')


def test_cameras_go_to_a_model_that_needs_them(monkeypatch):
    hook = ReClusterHook(
        label_generator=dict(
            type='DBSCANLabelGenerator', eps=0.2, min_samples=2, k1=3,
            k2=1, memory_check=False))

    class _Model(torch.nn.Module):
        needs_cameras = True

    cameras = np.array([3, 1, 1, 3])
    with_cameras = SimpleNamespace(
        model=_Model(),
        train_dataloader=SimpleNamespace(
            dataset=SimpleNamespace(get_camera_ids=lambda: cameras)))
    got = hook._model_cameras(with_cameras)
    assert got['cameras'].tolist() == cameras.tolist()
    without = SimpleNamespace(
        model=_Model(), train_dataloader=SimpleNamespace(dataset=object()))
    with pytest.raises(ValueError, match="trust_by='camera' reads the "
                       "images' cameras, but the train dataset object has "
                       'no camera ids'):
        hook._model_cameras(without)
    without.model = torch.nn.Module()  # a model that does not need them
    assert hook._model_cameras(without) == {}
