"""Reading the public cluster-contrast code's runs from their console log,
and the parity protocol's commands."""
import subprocess
import sys
from pathlib import Path

import pytest

from mmreid_rcl.utils.ablation import (PROTOCOLS, finish_run, run_command,
                                       run_summary)
from mmreid_rcl.utils.public_run_logs import public_run_summary

REPO = Path(__file__).resolve().parents[2]

# What tools/analysis/public_cluster_contrast_cpu.py prints, mixed with the
# public script's own output: a first attempt cut short, then a full run.
LOG = """\
[yardstick] run start
[yardstick] before training (ImageNet features):
[yardstick] eval mAP 0.0100 rank1 0.0050 rank5 0.0200
[yardstick] clusters 10 outliers 5 ARI 0.0100 NMI 0.5000 dbscan 1.0 s
Traceback (most recent call last):
KeyboardInterrupt
[yardstick] run start
[yardstick] before training (ImageNet features):
Mean AP: 2.4%
[yardstick] eval mAP 0.0244 rank1 0.0050 rank5 0.0251
==> Create pseudo labels for unlabeled data
[yardstick] clusters 240 outliers 5111 ARI 0.0370 NMI 0.7000 dbscan 9.5 s
Epoch: [0][10/100]\tTime 1.0 (1.0)\tLoss 5.000 (5.000)
[yardstick] trained epoch 1 in 100.5 s
[yardstick] eval mAP 0.0400 rank1 0.0201 rank5 0.0603
[yardstick] epoch wall 130.0 s
[yardstick] clusters 309 outliers 3000 ARI -0.0010 NMI 0.7500 dbscan 9.8 s
[yardstick] trained epoch 2 in 99.0 s
[yardstick] eval mAP 0.0680 rank1 0.0352 rank5 0.0904
==> Test with the best model:
[yardstick] test with the best model
[yardstick] eval mAP 0.0680 rank1 0.0352 rank5 0.0904
[yardstick] total wall 300.0 s
"""


def test_summary_of_the_last_attempt():
    summary = public_run_summary(LOG)
    assert summary['initial'] == pytest.approx(
        dict(mAP=2.44, rank1=0.5, rank5=2.51))
    assert [row['epoch'] for row in summary['epochs']] == [1, 2]
    first, second = summary['epochs']
    assert first == pytest.approx(
        dict(epoch=1, cluster_clusters=240, cluster_outliers=5111,
             cluster_ari=0.037, cluster_nmi=0.7, cluster_time_cluster=9.5,
             time=100.5, mAP=4.0, rank1=2.01, rank5=6.03))
    assert second['cluster_ari'] == pytest.approx(-0.001)
    assert second['mAP'] == pytest.approx(6.8)
    assert summary['best']['mAP'] == pytest.approx(6.8)
    assert summary['final_cluster'] == {}


def test_an_epoch_without_evaluation_keeps_no_metrics():
    text = ('[yardstick] run start\n'
            '[yardstick] clusters 3 outliers 1 ARI 0.5 NMI 0.9\n'
            '[yardstick] trained epoch 1 in 2.0 s\n'
            '[yardstick] clusters 4 outliers 0 ARI 0.6 NMI 0.9\n'
            '[yardstick] trained epoch 2 in 2.0 s\n'
            '[yardstick] eval mAP 0.5000 rank1 0.2500 rank5 0.7500\n')
    first, second = public_run_summary(text)['epochs']
    assert 'mAP' not in first and first['cluster_clusters'] == 3
    assert second['mAP'] == pytest.approx(50.0)
    assert public_run_summary(text)['initial'] == {}


@pytest.mark.parametrize('text, message', [
    ('Epoch: [0][10/100] Loss 5.0\n', 'no \\[yardstick\\] line'),
    ('[yardstick] clusters many outliers 1 ARI 0.5 NMI 0.9\n',
     'cannot read the clustering line'),
    ('[yardstick] trained epoch 1\n[yardstick] eval mAP n/a\n',
     'cannot read the evaluation line'),
])
def test_unreadable_logs_are_named(text, message):
    with pytest.raises(ValueError, match=message):
        public_run_summary(text)


def test_parity_commands(tmp_path):
    protocol = PROTOCOLS['cuhk03_parity']
    assert protocol.plan([0, 1], []) == [
        ('ours', 0), ('public', 0), ('ours', 1), ('public', 1)]
    ours, public = protocol.variant('ours'), protocol.variant('public')
    cmd = run_command(str(REPO), ours, str(tmp_path / 'o'), 3,
                      ['data_root=x'])
    assert cmd[1].endswith('tools/train.py') and 'randomness.seed=3' in cmd
    assert 'data_root=x' in cmd
    with pytest.raises(ValueError, match='pass --cc-root'):
        run_command(str(REPO), public, str(tmp_path / 'p'), 3, [])
    with pytest.raises(ValueError, match='expected a checkout'):
        run_command(str(REPO), public, str(tmp_path / 'p'), 3, [],
                    cc_root=str(tmp_path))
    script = tmp_path / 'cc' / 'examples' / 'cluster_contrast_train_usl.py'
    script.parent.mkdir(parents=True)
    script.write_text('')
    cmd = run_command(str(REPO), public, str(tmp_path / 'p'), 3,
                      ['data_root=x'], cc_root=str(tmp_path / 'cc'))
    assert cmd[1].endswith('public_cluster_contrast_cpu.py')
    rest = cmd[cmd.index('--') + 1:]
    assert rest[-4:] == ['--seed', '3', '--logs-dir', str(tmp_path / 'p')]
    assert '--eps' in rest and 'data_root=x' not in cmd


def test_a_public_run_is_summarised_from_its_log(tmp_path):
    public = PROTOCOLS['cuhk03_parity'].variant('public')
    with pytest.raises(FileNotFoundError, match='train.out'):
        run_summary(public, str(tmp_path))
    (tmp_path / 'train.out').write_text(LOG)
    summary = finish_run(str(tmp_path), str(tmp_path / 'runs' / 'p.json'),
                         12.0, public)
    assert summary['wall_time_s'] == 12.0
    assert summary['epochs'][-1]['mAP'] == pytest.approx(6.8)
    assert (tmp_path / 'runs' / 'p.json').is_file()


def test_tool_asks_for_the_public_checkout(tmp_path):
    proc = subprocess.run([
        sys.executable,
        str(REPO / 'tools' / 'run_ablation.py'), '--protocol',
        'cuhk03_parity', '--out-dir',
        str(tmp_path)
    ], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and '--cc-root is missing' in proc.stderr
