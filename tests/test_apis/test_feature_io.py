import numpy as np
import pytest

from mmreid_rcl.apis import (check_feature_output, feature_output_paths,
                             load_features, save_features)


def test_npz_round_trip_and_overwrite(tmp_path):
    feats = np.random.default_rng(0).random((4, 3)).astype(np.float32)
    names = ['a/x.jpg', 'b.jpg', 'c d.png', 'e.jpg']
    out = str(tmp_path / 'sub' / 'f.npz')
    written = save_features(
        out, feats, names, pids=[1, 1, 2, 3], camids=[0, 1, 0, 1],
        is_query=[True, False, False, False], config='c.py',
        checkpoint='k.pth')
    assert written == [out]
    data = load_features(out)
    np.testing.assert_array_equal(data['features'], feats)
    assert data['filenames'] == names
    np.testing.assert_array_equal(data['pids'], [1, 1, 2, 3])
    np.testing.assert_array_equal(data['camids'], [0, 1, 0, 1])
    np.testing.assert_array_equal(data['is_query'], [1, 0, 0, 0])
    assert data['config'] == 'c.py' and data['checkpoint'] == 'k.pth'
    with np.load(out) as raw:
        assert set(raw.files) == {
            'features', 'filenames', 'pids', 'camids', 'is_query', 'config',
            'checkpoint'
        }
    with pytest.raises(FileExistsError, match='f.npz'):
        save_features(out, feats, names)
    save_features(out, feats[:2], names[:2], overwrite=True)
    data = load_features(out)
    assert data['filenames'] == names[:2] and 'pids' not in data
    assert not list(tmp_path.glob('sub/*.tmp'))


def test_npy_with_sidecar(tmp_path):
    feats = np.eye(3, dtype=np.float32)
    out = str(tmp_path / 'f.npy')
    written = save_features(out, feats, ['1.jpg', '2.jpg', '3.jpg'])
    assert written == [out, str(tmp_path / 'f.txt')]
    assert (tmp_path / 'f.txt').read_text() == '1.jpg\n2.jpg\n3.jpg\n'
    data = load_features(out)
    np.testing.assert_array_equal(data['features'], feats)
    assert data['filenames'] == ['1.jpg', '2.jpg', '3.jpg']
    # The sidecar alone existing also blocks a new .npy.
    (tmp_path / 'g.txt').write_text('keep me')
    with pytest.raises(FileExistsError, match='g.txt'):
        check_feature_output(str(tmp_path / 'g.npy'))
    with pytest.raises(ValueError, match='.npz'):
        save_features(str(tmp_path / 'h.npy'), feats, ['1', '2', '3'],
                      pids=[1, 2, 3])


def test_bad_names_and_shapes(tmp_path):
    with pytest.raises(ValueError, match='.npz'):
        feature_output_paths(str(tmp_path / 'f.csv'))
    with pytest.raises(ValueError, match='2 file names for 3'):
        save_features(str(tmp_path / 'f.npz'), np.zeros((3, 2)), ['a', 'b'])
    with pytest.raises(ValueError, match=r'pids must have shape \(2, \)'):
        save_features(str(tmp_path / 'f.npz'), np.zeros((2, 2)), ['a', 'b'],
                      pids=[1])
    with pytest.raises(FileNotFoundError, match='none.npz'):
        load_features(str(tmp_path / 'none.npz'))
    np.savez(str(tmp_path / 'other.npz'), x=np.zeros(2))
    with pytest.raises(KeyError, match='features'):
        load_features(str(tmp_path / 'other.npz'))


def test_a_corrupt_feature_file_is_named(tmp_path):
    from mmreid_rcl.apis import load_features
    bad = tmp_path / 'bad.npz'
    bad.write_bytes(b'not a zip archive')
    with pytest.raises(ValueError, match="bad.npz' cannot be read"):
        load_features(str(bad))
