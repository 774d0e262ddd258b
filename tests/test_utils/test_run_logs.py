import json

import pytest

from mmreid_rcl.utils.run_logs import epoch_summary, format_epoch_table


def _write(work_dir, stamp, records):
    path = work_dir / stamp / 'vis_data'
    path.mkdir(parents=True)
    with open(path / 'scalars.json', 'w') as f:
        for rec in records:
            f.write(json.dumps(rec) + '\n')


def test_epoch_summary_merges_runs_and_resumes(tmp_path):
    _write(tmp_path, '20260101_000000', [
        {'val_init/reid/mAP': 2.0, 'val_init/reid/rank1': 1.0, 'step': 0},
        {'cluster/clusters': 10.0, 'cluster/ari': 0.1, 'step': 0},
        {'clusters': 10.0, 'loss': 3.0, 'step': 5},  # per-iter: ignored
        {'epoch/time': 30.0, 'step': 1},
        {'reid/mAP': 5.0, 'reid/rank1': 4.0, 'step': 1},
        {'cluster/clusters': 12.0, 'cluster/ari': 0.2, 'step': 1},
    ])
    # Resumed: epoch 2 re-logged, then the final clustering.
    _write(tmp_path, '20260101_010000', [
        {'epoch/time': 31.0, 'step': 2},
        {'reid/mAP': 6.0, 'reid/rank1': 5.0, 'step': 2},
        {'cluster/clusters': 13.0, 'cluster/ari': 0.3, 'step': 2},
    ])
    summary = epoch_summary(str(tmp_path))
    assert summary['initial'] == {'mAP': 2.0, 'rank1': 1.0}
    assert [r['epoch'] for r in summary['epochs']] == [1, 2]
    first, second = summary['epochs']
    assert first['cluster_clusters'] == 10.0 and first['mAP'] == 5.0
    assert second['cluster_ari'] == 0.2 and second['time'] == 31.0
    assert summary['final_cluster'] == {'clusters': 13.0, 'ari': 0.3}
    table = format_epoch_table(summary)
    assert '| 2 | 12 |' in table and 'final clustering | 13' in table


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        epoch_summary(str(tmp_path / 'nowhere'))
    _write(tmp_path, 'x', [])
    (tmp_path / 'x' / 'vis_data' / 'scalars.json').write_text('{oops\n')
    with pytest.raises(ValueError, match='scalars.json:1'):
        epoch_summary(str(tmp_path))


def test_new_format_keeps_next_epoch_clustering_apart_from_final(tmp_path):
    _write(tmp_path, '20260101_000000', [
        {'cluster/clusters': 10.0, 'cluster/format': 2, 'step': 0},
        {'epoch/time': 30.0, 'step': 1},
        {'reid/mAP': 5.0, 'step': 1},
        # The clustering for epoch 2 of a run still in progress.
        {'cluster/clusters': 12.0, 'cluster/format': 2, 'step': 1},
    ])
    summary = epoch_summary(str(tmp_path))
    assert summary['final_cluster'] == {}
    _write(tmp_path, '20260101_010000', [
        {'final_cluster/clusters': 11.0, 'final_cluster/ari': 0.4,
         'final_cluster/format': 2, 'step': 1},
    ])
    summary = epoch_summary(str(tmp_path))
    assert summary['final_cluster'] == {'clusters': 11.0, 'ari': 0.4}
    assert summary['epochs'][0]['cluster_clusters'] == 10.0
