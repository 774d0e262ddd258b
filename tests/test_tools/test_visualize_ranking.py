
import cv2
import numpy as np
import pytest
from tool_utils import load_tool, tiny_model

from mmreid_rcl.apis import ReIDInferencer, save_features


def slow_ap_and_first(distmat, q_pids, g_pids, q_cams, g_cams):
    """AP and first-match rank per query, gallery sorted by (dist, index)
    after removing same-identity same-camera images; NaN / 0 without a
    match."""
    aps, firsts = [], []
    for i in range(len(q_pids)):
        pairs = sorted((d, j) for j, d in enumerate(distmat[i])
                       if not (g_pids[j] == q_pids[i]
                               and g_cams[j] == q_cams[i]))
        ranks = [r + 1 for r, (_, j) in enumerate(pairs)
                 if g_pids[j] == q_pids[i]]
        aps.append(np.mean([(k + 1) / r for k, r in enumerate(ranks)])
                   if ranks else np.nan)
        firsts.append(ranks[0] if ranks else 0)
    return np.array(aps), np.array(firsts)


@pytest.fixture(scope='module')
def tool():
    return load_tool('visualize_ranking.py')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('vis')
    config, checkpoint, data_root = tiny_model(root, num_ids=5, seed=5)
    inferencer = ReIDInferencer(config, checkpoint)
    samples = inferencer.load_split('test')
    feats = inferencer.extract(samples['filenames'])
    q = samples['is_query']
    qf = [a / np.linalg.norm(a) for a in feats[q].astype(np.float64)]
    gf = [b / np.linalg.norm(b) for b in feats[~q].astype(np.float64)]
    slow = np.array([[np.sum((a - b)**2) for b in gf] for a in qf])
    ap, first = slow_ap_and_first(slow, samples['pids'][q],
                                  samples['pids'][~q], samples['camids'][q],
                                  samples['camids'][~q])
    features = str(root / 'test.npz')
    save_features(features, feats, samples['filenames'],
                  **{k: samples[k] for k in ('pids', 'camids', 'is_query')})
    return dict(config=config, checkpoint=checkpoint, ap=ap, first=first,
                features=features, samples=samples, root=root)


def printed_rows(out):
    """(query index, AP %, first match) of the printed table."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.split()[:2] == ['query', 'AP'])
    rows = []
    for line in lines[start + 1:]:
        parts = line.split()
        if len(parts) != 4 or not parts[0].isdigit():
            break
        rows.append((int(parts[0]), float(parts[1]), int(parts[2])))
    return rows


def test_select_worst_against_slow_reference(tool):
    rng = np.random.default_rng(0)
    q_pids, g_pids = rng.integers(0, 10, 40), rng.integers(0, 8, 150)
    q_cams, g_cams = rng.integers(0, 2, 40), rng.integers(0, 2, 150)
    distmat = np.round(rng.random((40, 150)), 2)
    from mmreid_rcl.apis import average_precision_per_query
    ap = average_precision_per_query(distmat, q_pids, g_pids, q_cams,
                                     g_cams)
    ref, _ = slow_ap_and_first(distmat, q_pids, g_pids, q_cams, g_cams)
    valid = [i for i in range(40) if not np.isnan(ref[i])]
    expected = sorted(valid, key=lambda i: (ref[i], i))
    assert len(valid) < 40  # some queries have no match: never picked
    for n in (1, 5, 60):
        np.testing.assert_array_equal(
            tool.select_queries(ap, worst=n), expected[:n])


def test_select_random_is_seeded(tool):
    ap = np.array([0.5, np.nan, 0.2, 0.9, 0.1, np.nan, 0.3, 0.7])
    first = tool.select_queries(ap, random=4, seed=1)
    np.testing.assert_array_equal(first,
                                  tool.select_queries(ap, random=4, seed=1))
    assert len(first) == 4 and list(first) == sorted(first)
    assert not set(first) & {1, 5}
    assert any(
        list(tool.select_queries(ap, random=4, seed=s)) != list(first)
        for s in range(2, 6))
    assert sorted(tool.select_queries(ap, random=100)) == [0, 2, 3, 4, 6, 7]
    with pytest.raises(ValueError):
        tool.select_queries(ap, worst=2, random=2)


def test_worst_run_picks_lowest_ap(tool, setup, tmp_path, capsys):
    out_dir = tmp_path / 'pictures'
    assert tool.main([
        setup['config'], setup['checkpoint'], '--out-dir',
        str(out_dir), '--worst', '3', '--topk', '4', '--per-image', '2'
    ]) == 0
    out = capsys.readouterr().out
    ap, first = setup['ap'], setup['first']
    expected = sorted(np.flatnonzero(~np.isnan(ap)),
                      key=lambda i: (ap[i], i))[:3]
    rows = printed_rows(out)
    assert [r[0] for r in rows] == expected
    for index, ap_percent, first_match in rows:
        assert ap_percent == pytest.approx(100 * ap[index], abs=0.05)
        assert first_match == first[index]
    assert f'mAP {100 * np.nanmean(ap):.2f}%' in out
    assert 'excluded' in out or 'excluded' in tool.PROTOCOL_NOTE
    # 3 queries, 2 a picture.
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == ['ranking_worst_00.png', 'ranking_worst_01.png']
    big = cv2.imread(str(out_dir / names[0]))
    small = cv2.imread(str(out_dir / names[1]))
    assert big.shape[1] == small.shape[1]
    assert big.shape[0] > small.shape[0]  # two rows against one


def test_features_file_gives_the_same_run(tool, setup, tmp_path, capsys):
    args = [setup['config'], 'unused.pth', '--random', '4', '--seed', '3',
            '--topk', '3']
    assert tool.main(args + ['--out-dir', str(tmp_path / 'a'),
                             '--features', setup['features']]) == 0
    from_file = printed_rows(capsys.readouterr().out)
    args[1] = setup['checkpoint']
    assert tool.main(args + ['--out-dir', str(tmp_path / 'b')]) == 0
    assert printed_rows(capsys.readouterr().out) == from_file
    assert len(from_file) == 4
    assert (tmp_path / 'a' / 'ranking_random_00.png').is_file()


def test_features_of_another_split_are_refused(tool, setup, tmp_path):
    samples = setup['samples']
    other = str(tmp_path / 'query.npz')
    q = samples['is_query']
    save_features(other, np.zeros((int(q.sum()), 4), np.float32),
                  [n for n, f in zip(samples['filenames'], q) if f])
    with pytest.raises(SystemExit, match='--split test'):
        tool.main([
            setup['config'], setup['checkpoint'], '--out-dir',
            str(tmp_path), '--features', other
        ])
