"""Ablation protocols: run order, summaries, summary.json and the tool."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmreid_rcl.utils.ablation import (PROTOCOLS, compare_runs, final_figures,
                                       format_report, load_runs,
                                       protocol_summary, rebuilt_run_file,
                                       run_file, write_outputs)

REPO = Path(__file__).resolve().parents[2]


def _run_json(path, mAP, ari=0.5, first=None):
    epochs = [dict(epoch=1, mAP=mAP, rank1=mAP + 1, rank5=mAP + 2)]
    if first:
        epochs[0].update(first)
    path.write_text(
        json.dumps(
            dict(
                initial={'mAP': 2.0},
                epochs=epochs,
                final_cluster=dict(ari=ari, nmi=0.8))))


def test_imagenet_plan_order_and_configs():
    protocol = PROTOCOLS['cuhk03_imagenet']
    runs = protocol.plan([0, 1, 2], [0])
    assert runs[:6] == [('baseline', 0), ('rcl', 0), ('baseline', 1),
                        ('rcl', 1), ('baseline', 2), ('rcl', 2)]
    assert runs[6:] == [('csa', 0), ('hps', 0), ('hard', 0),
                        ('rcl_floor1', 0), ('central', 0),
                        ('baseline_k8', 0), ('rcl_k8', 0),
                        ('rcl_warmup4', 0), ('rcl_sink', 0)]
    only = protocol.plan([0, 1], [0], ['central', 'rcl'])
    assert only == [('rcl', 0), ('rcl', 1), ('central', 0)]


@pytest.mark.parametrize('name', sorted(PROTOCOLS))
def test_every_protocol_config_exists(name):
    protocol = PROTOCOLS[name]
    variants = list(protocol.variants)
    if protocol.pretrain is not None:
        variants.append(protocol.pretrain)
    for variant in variants:
        assert (REPO / variant.config).is_file(), variant.config
    assert set(protocol.main + protocol.others) <= {
        v.name for v in protocol.variants}


def test_load_runs_keeps_variants_with_a_common_prefix_apart(tmp_path):
    _run_json(tmp_path / 'rcl_seed1.json', 10.0)
    _run_json(tmp_path / 'rcl_seed0.json', 12.0)
    _run_json(tmp_path / 'rcl_k8_seed0.json', 5.0)
    runs = load_runs(str(tmp_path), 'rcl')
    assert [seed for seed, _ in runs] == [0, 1]
    assert final_figures(runs[0][1])['mAP'] == 12.0


def test_a_rebuilt_run_stays_beside_the_recorded_one(tmp_path):
    recorded = Path(run_file(str(tmp_path), 'supervised', 0))
    rebuilt = Path(rebuilt_run_file(str(tmp_path), 'supervised', 0))
    _run_json(recorded, 33.85)
    _run_json(rebuilt, 33.10)
    # The table keeps reading the recorded run only.
    runs = load_runs(str(tmp_path), 'supervised')
    assert [(seed, final_figures(r)['mAP']) for seed, r in runs] == [
        (0, 33.85)]
    line = compare_runs(str(recorded), str(rebuilt))
    assert line == ('supervised_seed0.rebuilt.json: mAP 33.85 recorded, '
                    '33.10 rebuilt (-0.75); rank1 34.85 recorded, 34.10 '
                    'rebuilt (-0.75)')


def test_summary_reads_the_final_clustering_diagnostics(tmp_path):
    path = tmp_path / 'rcl_seed0.json'
    _run_json(path, 9.0)
    run = json.loads(path.read_text())
    run['final_cluster'].update(attention_auc=0.61, similarity_auc=0.55,
                                similarity_score_auc=0.8,
                                single_impostor_lowest=0.7)
    path.write_text(json.dumps(run))
    row = protocol_summary(PROTOCOLS['cuhk03_imagenet'],
                           str(tmp_path))['variants']['rcl'][0]
    assert (row['attention_auc'], row['similarity_auc'],
            row['similarity_score_auc'],
            row['single_impostor_lowest']) == (0.61, 0.55, 0.8, 0.7)
    text = format_report(PROTOCOLS['cuhk03_imagenet'], str(tmp_path))
    assert '| rcl | 0 | 0.610 | 0.550 | 0.800 | 0.700 | n/a |' in text


def test_report_and_summary_json(tmp_path):
    protocol = PROTOCOLS['cuhk03_imagenet']
    first = dict(cluster_purity=0.4, cluster_ari=0.06, cluster_clusters=227.0,
                 cluster_outliers=5284.0)
    for seed, mAP in ((0, 10.0), (1, 12.0)):
        _run_json(tmp_path / f'baseline_seed{seed}.json', mAP,
                  first=first if seed == 0 else None)
    text = format_report(protocol, str(tmp_path))
    # mean 11, sample std sqrt(2) = 1.41
    assert '| 2 | 11.00 ± 1.41 | +9.00 ± 1.41 | 12.00 ± 1.41 | 13.00 ± ' \
        '1.41 | 0.500 ± 0.000 | 0.800 ± 0.000 |' in text
    assert '| baseline | 1 | 12.00 | 2.00 | 13.00 |' in text
    assert 'purity 0.400, ARI 0.060' in text
    summary = protocol_summary(protocol, str(tmp_path))
    assert summary['protocol'] == 'cuhk03_imagenet'
    assert summary['supervised'] is None
    assert summary['first_clustering']['purity'] == 0.4
    assert summary['variants'] == {
        'baseline': [
            dict(seed=0, mAP=10.0, start_mAP=2.0, rank1=11.0, ari=0.5,
                 attention_auc=None,
                 similarity_auc=None, similarity_score_auc=None,
                 single_impostor_lowest=None),
            dict(seed=1, mAP=12.0, start_mAP=2.0, rank1=13.0, ari=0.5,
                 attention_auc=None,
                 similarity_auc=None, similarity_score_auc=None,
                 single_impostor_lowest=None)
        ]
    }
    out = tmp_path / 'out'
    write_outputs(protocol, str(tmp_path), str(out), 'cmd')
    assert json.loads((out / 'summary.json').read_text()) == summary
    assert 'Written by `cmd`' in (out / 'README.md').read_text()


def test_tool_report_only_and_bad_variant(tmp_path):
    (tmp_path / 'runs').mkdir()
    _run_json(tmp_path / 'runs' / 'hard_seed0.json', 9.0)
    cmd = [sys.executable, str(REPO / 'tools' / 'run_ablation.py')]
    out = subprocess.run(
        cmd + ['--report-only', '--out-dir', str(tmp_path)],
        capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert '| hard | 0 | 9.00 |' in out.stdout
    assert (tmp_path / 'summary.json').is_file()
    bad = subprocess.run(
        cmd + ['--only', 'nonsense'], capture_output=True, text=True,
        cwd=REPO)
    assert bad.returncode == 2
    assert "unknown variants ['nonsense']" in bad.stderr


def test_tool_draws_the_curves_a_protocol_names(tmp_path):
    """cuhk03_parity names ours and public: their runs are drawn into
    curves.png, which the protocol's README shows."""
    (tmp_path / 'runs').mkdir()
    _run_json(tmp_path / 'runs' / 'ours_seed0.json', 9.0)
    _run_json(tmp_path / 'runs' / 'public_seed0.json', 10.0)
    out = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'run_ablation.py'),
         '--protocol', 'cuhk03_parity', '--report-only', '--out-dir',
         str(tmp_path)], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / 'curves.png').stat().st_size > 1000
    readme = (tmp_path / 'README.md').read_text()
    assert '![per-epoch curves](curves.png)' in readme
    assert 'Per-epoch curves of ours, public' in readme
    summary = json.loads((tmp_path / 'summary.json').read_text())
    assert sorted(summary['variants']) == ['ours', 'public']
