import json
import sys
from pathlib import Path

import pytest

from mmreid_rcl.utils.run_logs import epoch_summary, format_epoch_table

REPO = Path(__file__).resolve().parents[2]


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


def test_ablation_plan_and_report(tmp_path):
    sys.path.insert(0, str(REPO / 'tools'))
    import run_ablation
    runs = run_ablation.plan([0, 1, 2], [0], None)
    assert runs[:6] == [('baseline', 0), ('rcl', 0), ('baseline', 1),
                        ('rcl', 1), ('baseline', 2), ('rcl', 2)]
    assert runs[6:] == [('csa', 0), ('hps', 0), ('hard', 0),
                        ('rcl_floor1', 0), ('central', 0),
                        ('baseline_k8', 0), ('rcl_k8', 0),
                        ('rcl_warmup4', 0)]
    assert run_ablation.plan([0, 1], [0], ['central', 'rcl']) == [
        ('rcl', 0), ('rcl', 1), ('central', 0)]
    for name, (_, config) in run_ablation.ABLATIONS.items():
        assert (REPO / config).is_file(), name
    for seed, mAP in ((0, 10.0), (1, 12.0)):
        (tmp_path / f'baseline_seed{seed}.json').write_text(json.dumps(dict(
            initial={'mAP': 2.0},
            epochs=[dict(epoch=1, mAP=mAP, rank1=mAP + 1, rank5=mAP + 2)],
            final_cluster=dict(ari=0.5, nmi=0.8))))
    text = run_ablation.report(str(tmp_path))
    # mean 11, sample std sqrt(2) = 1.41
    assert '| 2 | 11.00 ± 1.41 | 12.00 ± 1.41 | 13.00 ± 1.41 | 0.500 ± ' \
        '0.000 | 0.800 ± 0.000 |' in text
    assert '| baseline | 1 | 12.00 |' in text


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
