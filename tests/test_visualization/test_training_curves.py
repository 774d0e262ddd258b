"""Training curves read from fabricated scalar logs, and their figure."""
import json

import numpy as np
import pytest

from mmreid_rcl.visualization.training_curves import (draw_training_curves,
                                                      load_training_curves,
                                                      plot_training_curves)


def write_scalars(work_dir, stamp, records):
    """Write ``records`` as ``work_dir/stamp/vis_data/scalars.json``."""
    path = work_dir / stamp / 'vis_data'
    path.mkdir(parents=True)
    with open(path / 'scalars.json', 'w') as f:
        for rec in records:
            f.write(json.dumps(rec) + '\n')


def _train(it, epoch, loss, lr=3.5e-4):
    return {'loss': loss, 'lr': lr, 'epoch': epoch, 'iter': it, 'step': it}


def fabricate_resumed_run(work_dir):
    """Three epochs of 4 iterations (logged every 2), interrupted in epoch
    3 and resumed from the end of epoch 2, then a final clustering."""
    write_scalars(work_dir, '20260101_000000', [
        {'val_init/reid/mAP': 2.0, 'val_init/reid/rank1': 1.0, 'step': 0},
        {'cluster/clusters': 10.0, 'cluster/outliers': 50.0,
         'cluster/ari': 0.1, 'cluster/nmi': 0.5, 'cluster/format': 2,
         'step': 0},
        _train(2, 1, 4.0), _train(4, 1, 3.0),
        {'epoch/time': 30.0, 'step': 1},
        {'reid/mAP': 5.0, 'reid/rank1': 4.0, 'step': 1},
        {'cluster/clusters': 12.0, 'cluster/outliers': 40.0,
         'cluster/ari': 0.2, 'cluster/nmi': 0.6, 'cluster/format': 2,
         'step': 1},
        _train(6, 2, 2.5), _train(8, 2, 2.0, lr=3.5e-5),
        {'epoch/time': 31.0, 'step': 2},
        {'reid/mAP': 6.0, 'reid/rank1': 5.0, 'step': 2},
        {'cluster/clusters': 13.0, 'cluster/outliers': 30.0,
         'cluster/ari': 0.3, 'cluster/nmi': 0.7, 'cluster/format': 2,
         'step': 2},
        _train(10, 3, 9.9),  # lost: the resumed run re-logs iteration 10
    ])
    write_scalars(work_dir, '20260101_010000', [
        _train(10, 3, 1.5, lr=3.5e-5), _train(12, 3, 1.0, lr=3.5e-5),
        {'epoch/time': 29.0, 'step': 3},
        {'reid/mAP': 7.0, 'reid/rank1': 6.0, 'step': 3},
        {'final_cluster/clusters': 14.0, 'final_cluster/outliers': 20.0,
         'final_cluster/ari': 0.4, 'final_cluster/nmi': 0.8,
         'final_cluster/format': 2, 'step': 3},
    ])
    return work_dir


def test_curves_of_a_resumed_run(tmp_path):
    curves = load_training_curves(str(fabricate_resumed_run(tmp_path)))
    assert curves.iters_per_epoch == 4
    np.testing.assert_allclose(curves.iter_x, [.5, 1, 1.5, 2, 2.5, 3])
    # Iteration 10 comes from the resumed run, not the interrupted one.
    np.testing.assert_allclose(curves.loss, [4, 3, 2.5, 2, 1.5, 1])
    np.testing.assert_allclose(curves.lr[-3:], [3.5e-5] * 3)
    np.testing.assert_allclose(curves.epoch_loss_x, [.5, 1.5, 2.5])
    np.testing.assert_allclose(curves.epoch_loss, [3.5, 2.25, 1.25])
    # Clusterings at the epochs their model had trained; the last one is
    # the final diagnostic clustering.
    np.testing.assert_allclose(curves.cluster_x, [0, 1, 2, 3])
    np.testing.assert_allclose(curves.clusters, [10, 12, 13, 14])
    np.testing.assert_allclose(curves.outliers, [50, 40, 30, 20])
    np.testing.assert_allclose(curves.ari, [.1, .2, .3, .4])
    np.testing.assert_allclose(curves.nmi, [.5, .6, .7, .8])
    np.testing.assert_allclose(curves.metric_x, [0, 1, 2, 3])
    np.testing.assert_allclose(curves.mAP, [2, 5, 6, 7])
    np.testing.assert_allclose(curves.rank1, [1, 4, 5, 6])


def test_curves_without_initial_evaluation_or_quality(tmp_path):
    write_scalars(tmp_path, 'a', [
        {'cluster/clusters': 10.0, 'cluster/outliers': 5.0, 'step': 0},
        _train(3, 1, 2.0), _train(5, 1, 1.0),  # 5 iters, logged every 3
        {'reid/mAP': 5.0, 'reid/rank1': 4.0, 'step': 1},
    ])
    curves = load_training_curves(str(tmp_path))
    assert curves.iters_per_epoch == 5
    np.testing.assert_allclose(curves.metric_x, [1])
    assert np.isnan(curves.ari).all()
    fig = draw_training_curves([curves])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts == ['not logged']  # the ARI / NMI panel only


def test_overlay_png_has_the_requested_size(tmp_path):
    a = fabricate_resumed_run(tmp_path / 'a')
    b = fabricate_resumed_run(tmp_path / 'b')
    out = plot_training_curves([str(a), str(b)], str(tmp_path / 'o.png'),
                               labels=['A', 'B'], dpi=50)
    from PIL import Image
    with Image.open(out) as img:
        assert img.size == (650, 360)  # 13 x 7.2 inches at 50 dpi


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='holds no scalar logs'):
        load_training_curves(str(tmp_path))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_training_curves(str(tmp_path / 'missing'))
    curves = load_training_curves(str(fabricate_resumed_run(tmp_path)))
    with pytest.raises(ValueError, match='2 labels for 1 runs'):
        draw_training_curves([curves], labels=['a', 'b'])
