"""Per-epoch curves of a protocol's variants, drawn from run summaries."""
import numpy as np
import pytest

from mmreid_rcl.visualization.protocol_curves import (draw_protocol_curves,
                                                      plot_protocol_curves,
                                                      run_points)


def _summary(maps, clusters, start=2.0):
    epochs = [
        dict(epoch=e + 1, mAP=m, cluster_clusters=c, cluster_ari=0.1 * e)
        for e, (m, c) in enumerate(zip(maps, clusters))
    ]
    return dict(initial=dict(mAP=start), epochs=epochs, final_cluster={})


def test_points_put_each_figure_at_the_epochs_its_model_trained():
    summary = _summary([4.0, 6.0], [100, 120])
    summary['epochs'].append(dict(epoch=3, cluster_clusters=130))  # no eval
    x, y = run_points(summary, 'metric', 'mAP')
    assert x.tolist() == [0, 1, 2] and y.tolist() == [2.0, 4.0, 6.0]
    x, y = run_points(summary, 'cluster', 'cluster_clusters')
    assert x.tolist() == [0, 1, 2] and y.tolist() == [100, 120, 130]
    assert run_points(dict(epochs=[]), 'metric', 'mAP')[0].size == 0


def test_mean_line_over_the_seeds_that_reached_an_epoch(tmp_path):
    runs = {
        'ours': [(0, _summary([4.0, 6.0], [100, 120])),
                 (1, _summary([6.0], [110], start=4.0))],
        'public': [(0, _summary([5.0, 5.0], [90, 95]))],
        'none': [],
    }
    fig = draw_protocol_curves(runs, title='t')
    ax_map = fig.axes[0]
    # per variant: one thin line per seed, then the thick mean
    ours_mean = ax_map.lines[2]
    assert ours_mean.get_xdata().tolist() == [0, 1, 2]
    np.testing.assert_allclose(ours_mean.get_ydata(), [3.0, 5.0, 6.0])
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ['ours (2 seeds)', 'public (1 seed)']
    out = plot_protocol_curves(runs, str(tmp_path / 'sub' / 'c.png'))
    assert (tmp_path / 'sub' / 'c.png').stat().st_size > 1000
    assert out.endswith('c.png')


def test_nothing_to_draw_is_an_error():
    with pytest.raises(ValueError, match='no run has per-epoch figures'):
        draw_protocol_curves({'ours': [(0, dict(epochs=[]))]})
