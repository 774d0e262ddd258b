import os.path as osp
import shutil

import cv2
import mmcv
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny_reid import (HEIGHT, WIDTH, make_checkpoint, tiny_config,
                       write_market_folder)

from mmreid_rcl.apis import (ReIDInferencer, load_split_samples,
                             resolve_image_inputs)

MEAN_RGB = np.array([123.675, 116.28, 103.53])
STD_RGB = np.array([58.395, 57.12, 57.375])


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny')
    data_root = write_market_folder(str(root / 'data'))
    cfg = tiny_config(data_root)
    model = make_checkpoint(cfg, root / 'model.pth', seed=1)
    # A folder with a sub-folder and a non-image file, for listing.
    folder = root / 'images'
    (folder / 'sub').mkdir(parents=True)
    test_dir = osp.join(data_root, 'bounding_box_test')
    names = sorted(osp.basename(p) for p in resolve_image_inputs(test_dir))
    for name in names[:5]:
        shutil.copy(osp.join(test_dir, name), folder / name)
    for name in names[5:8]:
        shutil.copy(osp.join(test_dir, name), folder / 'sub' / name)
    (folder / 'notes.txt').write_text('not an image')
    # Another seed: the loaded weights must replace this initialisation.
    torch.manual_seed(123)
    inferencer = ReIDInferencer(cfg, str(root / 'model.pth'), batch_size=4)
    return dict(
        root=root,
        cfg=cfg,
        model=model,
        folder=str(folder),
        data_root=data_root,
        inferencer=inferencer)


def direct_features(model, paths):
    """Read, resize and normalise by hand, then run backbone and neck."""
    imgs = []
    for path in paths:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        bgr = mmcv.imresize(bgr, (WIDTH, HEIGHT), interpolation='bicubic')
        rgb = bgr[..., ::-1].astype(np.float64)
        imgs.append(((rgb - MEAN_RGB) / STD_RGB).transpose(2, 0, 1))
    x = torch.from_numpy(np.stack(imgs)).float()
    with torch.no_grad():
        feats = model.neck(model.backbone(x))
    return F.normalize(feats, dim=1).numpy()


def test_folder_features_sorted_normalised_and_model_equal(setup):
    inferencer = setup['inferencer']
    feats, names = inferencer.extract(setup['folder'], return_filenames=True)
    rel = [osp.relpath(n, setup['folder']) for n in names]
    # Recursive, sorted by relative path, the .txt skipped.
    assert rel == sorted(rel)
    assert len(rel) == 8 and sum(r.startswith('sub' + osp.sep)
                                 for r in rel) == 3
    assert not any(r.endswith('.txt') for r in rel)
    assert feats.dtype == np.float32
    assert feats.shape == (8, 512)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1, atol=1e-5)
    expected = direct_features(setup['model'], names)
    np.testing.assert_allclose(feats, expected, atol=2e-5)
    # Features differ between images (not a constant output).
    assert np.abs(feats[0] - feats[1]).max() > 1e-3


def test_checkpoint_is_really_loaded(setup):
    # The same config with other random weights gives other features.
    torch.manual_seed(7)
    with pytest.warns(UserWarning, match='no checkpoint'):
        fresh = ReIDInferencer(setup['cfg'])
    names = resolve_image_inputs(setup['folder'])[:2]
    assert not np.allclose(
        fresh.extract(names), setup['inferencer'].extract(names), atol=1e-3)


def test_arrays_equal_files_and_mixed_lists(setup):
    inferencer = setup['inferencer']
    paths = resolve_image_inputs(setup['folder'])[:3]
    arrays = [cv2.imread(p, cv2.IMREAD_COLOR) for p in paths]
    from_files = inferencer.extract(paths)
    from_arrays, names = inferencer.extract(arrays, return_filenames=True)
    np.testing.assert_allclose(from_arrays, from_files, atol=1e-6)
    assert names == [None] * 3
    # A batch of 1 or 2 instead of 3 may take other convolution kernels:
    # float32 rounding of the forward pass, as in the batch-size test.
    single = inferencer.extract(arrays[1])
    np.testing.assert_allclose(single[0], from_files[1], atol=1e-5)
    mixed, names = inferencer.extract([paths[0], arrays[1]],
                                      return_filenames=True)
    np.testing.assert_allclose(mixed, from_files[:2], atol=1e-5)
    assert names == [paths[0], None]
    # RGB arrays are not what files give: the channel order matters.
    rgb = inferencer.extract(arrays[0][..., ::-1].copy())
    assert not np.allclose(rgb[0], from_files[0], atol=1e-3)


def test_batch_size_does_not_change_features(setup, capsys):
    paths = resolve_image_inputs(setup['folder'])
    batched = setup['inferencer'].extract(paths)  # batches of 4
    assert '8/8' in capsys.readouterr().out  # a progress bar
    one = ReIDInferencer(
        setup['cfg'], str(setup['root'] / 'model.pth'), batch_size=64)
    np.testing.assert_allclose(one.extract(paths), batched, atol=1e-5)
    assert '8/8' not in capsys.readouterr().out  # one batch: no bar


def test_channels_last_same_features(setup):
    cfg = tiny_config(setup['data_root'], channels_last=True)
    inferencer = ReIDInferencer(cfg, str(setup['root'] / 'model.pth'))
    assert inferencer.model.channels_last
    paths = resolve_image_inputs(setup['folder'])
    np.testing.assert_allclose(
        inferencer.extract(paths), setup['inferencer'].extract(paths),
        atol=1e-5)


def test_bad_inputs_are_named(setup, tmp_path):
    inferencer = setup['inferencer']
    missing = str(tmp_path / 'nope.jpg')
    with pytest.raises(FileNotFoundError, match='nope.jpg'):
        inferencer.extract(missing)
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'readme.md').write_text('x')
    with pytest.raises(ValueError, match='no image found.*empty'):
        inferencer.extract(str(empty))
    with pytest.raises(ValueError, match=r'input array 0 .*\(4, 4\)'):
        inferencer.extract(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match='float32'):
        inferencer.extract(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match='no input'):
        inferencer.extract([])


def test_errors_of_construction(setup, tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        ReIDInferencer(setup['cfg'], str(tmp_path / 'missing.pth'))
    with pytest.raises(FileNotFoundError, match='nothing.py'):
        ReIDInferencer(str(tmp_path / 'nothing.py'))
    other = tiny_config(setup['data_root'])
    other.model.backbone.depth = 34
    with pytest.raises(RuntimeError, match='does not fit'):
        ReIDInferencer(other, str(setup['root'] / 'model.pth'))


def test_config_file_and_split_samples(setup):
    path = setup['root'] / 'tiny_cfg.py'
    setup['cfg'].dump(str(path))
    inferencer = ReIDInferencer(str(path), str(setup['root'] / 'model.pth'))
    query = inferencer.load_split('query')
    assert query['dataset_name'] == 'Market-1501'
    # One image per identity and camera in the query.
    assert len(query['filenames']) == 12
    for name, pid, cam in zip(query['filenames'], query['pids'],
                              query['camids']):
        base = osp.basename(name)
        assert int(base[:4]) == pid and int(base[6]) - 1 == cam
    test = load_split_samples(setup['cfg'], 'test')
    assert test['is_query'].sum() == 12
    assert test['filenames'][:12] == query['filenames']


def test_rank_and_search(setup):
    inferencer = setup['inferencer']
    gallery = osp.join(setup['data_root'], 'bounding_box_test')
    query = resolve_image_inputs(osp.join(setup['data_root'], 'query'))[:2]
    result = inferencer.search(query, gallery, topk=5)
    assert result['gallery_filenames'] == resolve_image_inputs(gallery)
    q, g = result['query_features'], result['gallery_features']
    slow = np.array([[np.sum((a - b)**2) for b in g] for a in q])
    # No near-ties on this data (the 6 nearest are 5e-5 apart or more, far
    # above float32 rounding), so both orders agree exactly.
    np.testing.assert_array_equal(result['indices'],
                                  np.argsort(slow, 1, kind='stable')[:, :5])
    np.testing.assert_allclose(
        result['distances'], np.sort(slow, 1)[:, :5], atol=1e-5)
    # An image searched in a gallery that holds it comes first, at 0.
    own = inferencer.search(query[0], query, topk=1)
    assert own['indices'][0, 0] == 0 and own['distances'][0, 0] < 1e-5


@pytest.mark.shared_data
def test_real_cuhk03_images(setup, cuhk03_root):
    """Real images of many sizes: listing, arrays against files."""
    cfg = tiny_config(str(cuhk03_root))
    cfg.test_dataloader.dataset.type = 'CUHK03Dataset'
    samples = load_split_samples(cfg, 'test')
    assert samples['is_query'].sum() == 200
    assert len(samples['filenames']) == 200 + 738
    query_dir = osp.join(str(cuhk03_root), 'query')
    listed = resolve_image_inputs(query_dir)
    assert listed == sorted(samples['filenames'][:200])
    paths = listed[::40]
    shapes = {cv2.imread(p).shape for p in paths}
    assert len(shapes) > 1
    inferencer = setup['inferencer']
    np.testing.assert_allclose(
        inferencer.extract([cv2.imread(p) for p in paths]),
        inferencer.extract(paths), atol=1e-6)
