import os.path as osp

import numpy as np
import pytest
from tool_utils import load_tool, tiny_model

from mmreid_rcl.apis import ReIDInferencer, resolve_image_inputs


@pytest.fixture(scope='module')
def tool():
    return load_tool('extract_features.py')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('extract')
    config, checkpoint, data_root = tiny_model(root, num_ids=4, seed=3)
    return dict(
        config=config,
        checkpoint=checkpoint,
        data_root=data_root,
        inferencer=ReIDInferencer(config, checkpoint))


def test_folder_to_npz_and_no_overwrite(tool, setup, tmp_path, capsys):
    folder = osp.join(setup['data_root'], 'bounding_box_test')
    out = str(tmp_path / 'gallery.npz')
    args = [setup['config'], setup['checkpoint'], folder, '--out', out]
    assert tool.main(args + ['--batch-size', '5']) == 0
    assert '16 features of dim 512' in capsys.readouterr().out
    with np.load(out) as data:
        assert set(data.files) == {'features', 'filenames', 'config',
                                   'checkpoint'}
        names = [str(n) for n in data['filenames']]
        assert names == resolve_image_inputs(folder)
        np.testing.assert_allclose(
            data['features'], setup['inferencer'].extract(names), atol=1e-5)
        assert str(data['checkpoint']) == setup['checkpoint']
    before = osp.getmtime(out)
    with pytest.raises(SystemExit, match='already exists.*--overwrite'):
        tool.main(args)
    assert osp.getmtime(out) == before
    assert tool.main(args + ['--overwrite']) == 0


def test_split_stores_labels(tool, setup, tmp_path):
    out = str(tmp_path / 'test.npz')
    assert tool.main([
        setup['config'], setup['checkpoint'], '--split', 'test', '--out', out
    ]) == 0
    samples = setup['inferencer'].load_split('test')
    with np.load(out) as data:
        assert {'pids', 'camids', 'is_query'} <= set(data.files)
        assert [str(n) for n in data['filenames']] == samples['filenames']
        np.testing.assert_array_equal(data['pids'], samples['pids'])
        np.testing.assert_array_equal(data['camids'], samples['camids'])
        np.testing.assert_array_equal(data['is_query'], samples['is_query'])
        # Names carry the labels: 0001_c2... is id 1, camera index 1.
        for name, pid, cam in zip(data['filenames'], data['pids'],
                                  data['camids']):
            base = osp.basename(str(name))
            assert int(base[:4]) == pid and int(base[6]) - 1 == cam


def test_image_list_to_npy(tool, setup, tmp_path):
    query = resolve_image_inputs(osp.join(setup['data_root'], 'query'))
    listing = tmp_path / 'list.txt'
    # Relative to the list's folder, and absolute; a blank line skipped.
    listing.write_text(
        osp.relpath(query[2], tmp_path) + '\n\n' + query[0] + '\n')
    out = str(tmp_path / 'f.npy')
    assert tool.main(
        [setup['config'], setup['checkpoint'],
         str(listing), '--out', out]) == 0
    feats = np.load(out)
    assert feats.shape == (2, 512)
    names = (tmp_path / 'f.txt').read_text().splitlines()
    assert [osp.realpath(n) for n in names] == [
        osp.realpath(query[2]), osp.realpath(query[0])]
    np.testing.assert_allclose(
        feats, setup['inferencer'].extract([query[2], query[0]]), atol=1e-5)


def test_argument_errors(tool, setup, tmp_path):
    with pytest.raises(SystemExit):  # neither INPUT nor --split
        tool.main([setup['config'], setup['checkpoint'], '--out', 'x.npz'])
    with pytest.raises(SystemExit, match='.npz'):
        tool.main([
            setup['config'], setup['checkpoint'], '--split', 'query',
            '--out', str(tmp_path / 'x.csv')
        ])
    with pytest.raises(SystemExit, match='missing.pth'):
        tool.main([
            setup['config'], str(tmp_path / 'missing.pth'), '--split',
            'query', '--out', str(tmp_path / 'x.npz')
        ])


def test_init_takes_the_configs_initial_weights(tool, setup, tmp_path):
    out = str(tmp_path / 'init.npz')
    with pytest.warns(UserWarning, match='initial weights'):
        assert tool.main([
            setup['config'], 'init', '--split', 'query', '--out', out
        ]) == 0
    trained = setup['inferencer'].extract(
        resolve_image_inputs(osp.join(setup['data_root'], 'query')))
    with np.load(out) as data:
        assert str(data['checkpoint']) == 'init'
        assert data['features'].shape == trained.shape
        np.testing.assert_allclose(
            np.linalg.norm(data['features'], axis=1), 1.0, atol=1e-5)
        # Not the trained model's features.
        assert np.abs(data['features'] - trained).max() > 1e-3
