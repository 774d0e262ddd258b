"""tools/analysis/sweep_eps.py: features of a split -> eps sweep -> table."""
import pytest
from mmengine.config import Config
from tool_utils import load_tool, tiny_model

from mmreid_rcl.datasets.id_subset import select_ids

GENERATOR = dict(
    type='DBSCANLabelGenerator', eps=0.6, min_samples=2, k1=6, k2=2,
    knn='exact')
NUM_IDS = 8  # ids 1..8, 2 cameras x 2 images each


@pytest.fixture(scope='module')
def tool():
    return load_tool('analysis/sweep_eps.py')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('sweep_eps')
    config, checkpoint, data_root = tiny_model(root, num_ids=NUM_IDS, seed=3)
    # The tiny config with a train id subset and a ReClusterHook.
    cfg = Config.fromfile(config)
    subset = dict(fraction=0.5, seed=0, part='unlabelled')
    cfg.train_dataloader = dict(
        dataset=dict(type='Market1501Dataset', data_root=data_root,
                     id_subset=subset))
    semi = str(root / 'semi.py')
    Config(dict(cfg.to_dict(), custom_hooks=[
        dict(type='ReClusterHook', label_generator=GENERATOR)
    ])).dump(semi)
    # The same with k1 too large for the data.
    bad = str(root / 'bad.py')
    Config(dict(custom_hooks=[
        dict(type='ReClusterHook', label_generator=dict(GENERATOR, k1=40))
    ])).dump(bad)
    ids = range(1, NUM_IDS + 1)
    return dict(
        config=config, checkpoint=checkpoint, semi=semi, bad=bad,
        labelled=select_ids(ids, dict(subset, part='labelled')),
        unlabelled=select_ids(ids, subset))


def table_rows(text):
    """The data rows of the printed markdown table, split into cells."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip('|').split('|')]
        if line.startswith('|') and cells[0].replace('.', '').isdigit():
            rows.append(cells)
    return rows


def test_sweep_and_choice(tool, setup, tmp_path, capsys):
    out = tmp_path / 'table.md'
    best = tool.main([
        setup['semi'], setup['checkpoint'], '--values', '0.2', '0.5', '0.9',
        '--id-subset-part', 'labelled', '--out', str(out)
    ])
    text = capsys.readouterr().out
    num = 4 * len(setup['labelled'])
    assert f'{num} images of {len(setup["labelled"])} ids' in text
    assert f'label generator from {setup["semi"]}' in text
    rows = table_rows(text)
    assert [r[0] for r in rows] == ['0.2', '0.5', '0.9']
    for cells in rows:
        clusters, outliers = int(cells[1]), int(cells[2])
        assert 0 <= outliers <= num and clusters * 2 <= num - outliers
    scores = [float(r[6]) for r in rows]
    # The chosen eps is the first of the best ARI over all images.
    first_best = [r[0] for r in rows][scores.index(max(scores))]
    assert f'chosen eps: {first_best} (ari_all' in text
    assert best['eps'] == float(first_best)
    written = out.read_text()
    assert written.splitlines()[2] == '| eps | clusters | outliers | ' \
        'purity | NMI | ARI | ARI all | cross-cam recall | time (s) |'
    assert f'chosen eps: {first_best}' in written

    # Existing output kept without --overwrite.
    with pytest.raises(SystemExit, match='already exists; pass --overwrite'):
        tool.main([setup['semi'], setup['checkpoint'], '--out', str(out)])

    # The config's own subset (the unlabelled part), one value,
    # min_samples replaced, the generator of the config itself.
    tool.main([
        setup['semi'], setup['checkpoint'], '--values', '0.5',
        '--min-samples', '3'
    ])
    text = capsys.readouterr().out
    num = 4 * len(setup['unlabelled'])
    assert f'{num} images of {len(setup["unlabelled"])} ids' in text
    assert "'min_samples': 3" in text
    assert len(table_rows(text)) == 1


def test_camera_penalty_grid(tool, setup, capsys):
    best = tool.main([
        setup['semi'], setup['checkpoint'], '--values', '0.3', '0.6',
        '--id-subset-part', 'all', '--camera-penalties', '0', '0.2'
    ])
    text = capsys.readouterr().out
    assert '| camera_penalty | eps | clusters |' in text
    rows = table_rows(text)
    assert [r[:2] for r in rows] == [['0', '0.3'], ['0', '0.6'],
                                     ['0.2', '0.3'], ['0.2', '0.6']]
    for cells in rows:
        assert 0 <= float(cells[8]) <= 1  # cross-camera recall
    scores = [float(r[7]) for r in rows]
    top = rows[scores.index(max(scores))]
    chosen = (best['camera_penalty'], best['eps'])
    assert chosen == (float(top[0]), float(top[1]))
    assert f'chosen eps: {top[1]}, camera_penalty {top[0]} (ari_all' in text
    with pytest.raises(SystemExit, match='camera_penalty must be'):
        tool.main([setup['semi'], setup['checkpoint'],
                   '--camera-penalties', '-1'])


def test_defaults_without_hook(tool, setup, capsys):
    # No ReClusterHook, no --generator-config: the hook's defaults (k1=30
    # needs more than 30 images: all 32 of the train split).
    tool.main([
        setup['config'], setup['checkpoint'], '--values', '0.6',
        '--id-subset-part', 'all'
    ])
    text = capsys.readouterr().out
    assert f'{4 * NUM_IDS} images of {NUM_IDS} ids' in text
    assert "label generator from the defaults" in text
    assert "{'type': 'DBSCANLabelGenerator'}" in text


def test_errors(tool, setup, tmp_path):
    config, ckpt = setup['config'], setup['checkpoint']
    with pytest.raises(SystemExit, match='sets no train_dataloader.dataset'
                       '.id_subset'):
        tool.main([config, ckpt, '--id-subset-part', 'labelled'])
    with pytest.raises(SystemExit, match='for the train split only, got '
                       '--split query'):
        tool.main([setup['semi'], ckpt, '--split', 'query',
                   '--id-subset-part', 'labelled'])
    with pytest.raises(SystemExit, match='has no ReClusterHook'):
        tool.main([config, ckpt, '--generator-config', config])
    with pytest.raises(SystemExit, match='--generator-config x.py does not'):
        tool.main([config, ckpt, '--generator-config', 'x.py'])
    with pytest.raises(SystemExit, match='checkpoint missing.pth does not'):
        tool.main([setup['semi'], 'missing.pth'])
    # A bad value is refused before anything is read.
    with pytest.raises(SystemExit, match=r'eps=1.2: eps must be in \(0, 1\)'):
        tool.main([setup['semi'], 'missing.pth', '--values', '0.5', '1.2'])
    with pytest.raises(SystemExit, match='needs more samples than k1=40'):
        tool.main([config, ckpt, '--generator-config', setup['bad'],
                   '--id-subset-part', 'all', '--values', '0.5'])
    with pytest.raises(SystemExit):
        tool.main([config, ckpt, '--min-samples', '0'])
