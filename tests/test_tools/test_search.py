import os.path as osp

import cv2
import numpy as np
import pytest
from tool_utils import load_tool, tiny_model

from mmreid_rcl.apis import ReIDInferencer, resolve_image_inputs, save_features


@pytest.fixture(scope='module')
def tool():
    return load_tool('search.py')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('search')
    config, checkpoint, data_root = tiny_model(root, num_ids=4, seed=4)
    gallery = osp.join(data_root, 'bounding_box_test')
    query = resolve_image_inputs(osp.join(data_root, 'query'))[1]
    inferencer = ReIDInferencer(config, checkpoint)
    g_feats, g_names = inferencer.extract(gallery, return_filenames=True)
    q_feat = inferencer.extract(query)[0]
    slow = [float(np.sum((q_feat - g)**2)) for g in g_feats]
    order = sorted(range(len(slow)), key=lambda j: (slow[j], j))
    features = str(root / 'gallery.npz')
    save_features(features, g_feats, g_names, checkpoint=checkpoint)
    return dict(config=config, checkpoint=checkpoint, gallery=gallery,
                query=query, names=g_names, slow=slow, order=order,
                features=features)


def ranked(out):
    """(rank, distance, file) rows of the printed list."""
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].isdigit():
            rows.append((int(parts[0]), float(parts[1]), parts[2]))
    return rows


def test_ranked_list_and_picture(tool, setup, tmp_path, capsys):
    out_png = str(tmp_path / 'result.png')
    args = [setup['query'], setup['gallery'], '--config', setup['config'],
            '--checkpoint', setup['checkpoint'], '--topk', '5']
    assert tool.main(args + ['--out', out_png, '--id-pattern',
                             r'^(\d+)_']) == 0
    out = capsys.readouterr().out
    rows = ranked(out)
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
    assert [r[2] for r in rows] == [setup['names'][j]
                                    for j in setup['order'][:5]]
    for (_, dist, _), j in zip(rows, setup['order']):
        assert dist == pytest.approx(setup['slow'][j], abs=1e-4)
    query_id = osp.basename(setup['query'])[:4]
    for line in out.splitlines():
        if line.split() and line.split()[0].isdigit():
            same = osp.basename(line.split()[2])[:4] == query_id
            assert line.endswith('(same id)') == same
    picture = cv2.imread(out_png)
    assert picture is not None and picture.shape[1] > picture.shape[0]

    # Features saved beforehand give the same list.
    assert tool.main(args + ['--gallery-features', setup['features']]) == 0
    assert ranked(capsys.readouterr().out) == rows


def test_features_of_another_folder_are_refused(tool, setup, tmp_path):
    other = str(tmp_path / 'other.npz')
    save_features(other, np.zeros((2, 512), np.float32), ['a.png', 'b.png'])
    with pytest.raises(SystemExit, match='does not hold the features'):
        tool.main([
            setup['query'], setup['gallery'], '--config', setup['config'],
            '--checkpoint', setup['checkpoint'], '--gallery-features', other
        ])
    with pytest.raises(SystemExit):  # the query must be a file
        tool.main([
            setup['gallery'], setup['gallery'], '--config', setup['config'],
            '--checkpoint', setup['checkpoint']
        ])
