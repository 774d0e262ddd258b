"""ONNX export and the ONNX backend: the same features as PyTorch on real
CUHK03 images, and the pre-processing check."""
import copy
import importlib.util
import os

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmreid_rcl.apis import (ONNXReIDInferencer, ReIDInferencer,
                             build_inferencer, export_onnx, read_onnx_metadata,
                             resolve_backend)
from mmreid_rcl.models.backbones import (convert_mobilenetv2_state_dict,
                                         load_mobilenetv2_source)
from mmreid_rcl.registry import MODELS
from mmreid_rcl.utils import register_all_modules

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
MOBILENET = os.path.join(
    REPO, 'configs', 'cluster_contrast',
    'cluster_contrast_mobilenetv2_cpu_cuhk03.py')
RESNET50 = os.path.join(REPO, 'configs', 'cluster_contrast',
                        'cluster_contrast_r50_16x16_cuhk03.py')
#: The largest cosine distance tolerated between the two backends.
PARITY = 1e-5


def need_onnx():
    """Skip without onnx / onnxruntime, except under CI, which installs
    requirements/optional.txt and must run these tests."""
    missing = [
        name for name in ('onnx', 'onnxruntime')
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        message = (f'{" and ".join(missing)} not installed (pip install -r '
                   'requirements/optional.txt)')
        if os.environ.get('CI'):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope='module')
def images(cuhk03_root):
    """Seven query images of CUHK03, of several identities and cameras."""
    files = sorted((cuhk03_root / 'query').glob('*.jpg'))
    assert len(files) >= 7
    return [str(f) for f in files[:7]]


def _set_test_size(cfg, width, height):
    for key in ('val_dataloader', 'test_dataloader'):
        for transform in cfg[key]['dataset']['pipeline']:
            if transform['type'] == 'Resize':
                transform['scale'] = (width, height)


def _export(cfg, model, folder, name):
    checkpoint = str(folder / f'{name}.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, checkpoint)
    onnx_file = str(folder / f'{name}.onnx')
    info = export_onnx(cfg, checkpoint, onnx_file, verify=False)
    return dict(cfg=cfg, checkpoint=checkpoint, onnx=onnx_file, info=info)


@pytest.fixture(scope='module')
def mobilenet(tmp_path_factory, mobilenetv2_weights):
    need_onnx()
    register_all_modules()
    cfg = Config.fromfile(MOBILENET)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    model.backbone.load_state_dict(
        convert_mobilenetv2_state_dict(
            load_mobilenetv2_source(str(mobilenetv2_weights))))
    return _export(cfg, model, tmp_path_factory.mktemp('mobilenet'),
                   'mobilenetv2')


@pytest.fixture(scope='module')
def resnet50(tmp_path_factory):
    """ResNet-50 with random weights, at 128x64 to keep the test short."""
    need_onnx()
    register_all_modules()
    cfg = Config.fromfile(RESNET50)
    cfg.model.backbone.init_cfg = None
    _set_test_size(cfg, 64, 128)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    return _export(cfg, model, tmp_path_factory.mktemp('resnet50'),
                   'resnet50')


def _max_cosine_distance(a, b):
    return float(np.max(1.0 - (a.astype(np.float64) * b).sum(1)))


@pytest.mark.shared_data
@pytest.mark.parametrize(
    'name', ['mobilenet', pytest.param('resnet50', marks=pytest.mark.slow)])
def test_onnx_features_match_pytorch(name, images, request):
    exported = request.getfixturevalue(name)
    torch_inferencer = ReIDInferencer(exported['cfg'],
                                      exported['checkpoint'])
    onnx_inferencer = ONNXReIDInferencer(exported['cfg'], exported['onnx'])
    for batch_size in (1, 7):
        torch_inferencer.batch_size = onnx_inferencer.batch_size = batch_size
        ref = torch_inferencer.extract(images, progress=False)
        ours = onnx_inferencer.extract(images, progress=False)
        assert ours.shape == ref.shape and ours.dtype == np.float32
        np.testing.assert_allclose(
            np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
        distance = _max_cosine_distance(ours, ref)
        assert distance < PARITY, (name, batch_size, distance)
        # Real features: the images do not all map to one vector.
        assert np.abs(ref[0] - ref[3]).max() > 1e-3
    if name != 'mobilenet':
        return
    # Arrays (BGR, as cv2.imread gives) take the same path.
    arrays = [cv2.imread(f) for f in images[:2]]
    assert _max_cosine_distance(
        onnx_inferencer.extract(arrays, progress=False),
        torch_inferencer.extract(arrays, progress=False)) < PARITY


@pytest.mark.shared_data
def test_metadata_and_graph(mobilenet):
    import onnx
    meta = read_onnx_metadata(mobilenet['onnx'])
    assert meta['input_size'] == [128, 64]
    assert meta['channel_order'] == 'RGB' and meta['bgr_to_rgb'] is True
    assert meta['mean'] == [123.675, 116.28, 103.53]
    assert meta['std'] == [58.395, 57.12, 57.375]
    assert meta['feature_dim'] == 1280
    assert meta['model'] == 'UnsupervisedReID'
    assert meta['checkpoint'] == mobilenet['checkpoint']
    assert mobilenet['info']['metadata']['input_size'] == '[128, 64]'
    proto = onnx.load(mobilenet['onnx'])
    assert proto.opset_import[0].version == 17
    (graph_input, ) = proto.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert graph_input.name == 'images'
    assert dims[0].dim_param == 'batch'
    assert [d.dim_value for d in dims[1:]] == [3, 128, 64]
    assert proto.graph.output[0].name == 'features'


@pytest.mark.shared_data
def test_preprocessing_mismatch_is_named(mobilenet, tmp_path):
    cfg = copy.deepcopy(mobilenet['cfg'])
    _set_test_size(cfg, 128, 256)
    with pytest.raises(ValueError,
                       match=r'disagree on the pre-processing: input_size: '
                       r'model \[128, 64\], config \[256, 128\]\. Use the '
                       'config the model was exported with'):
        ONNXReIDInferencer(cfg, mobilenet['onnx'])
    cfg = copy.deepcopy(mobilenet['cfg'])
    cfg.model.data_preprocessor = dict(
        type='ReIDDataPreprocessor', mean=[0, 0, 0], bgr_to_rgb=False)
    with pytest.raises(ValueError) as err:
        ONNXReIDInferencer(cfg, mobilenet['onnx'])
    message = str(err.value)
    assert "channel_order: model RGB, config BGR" in message
    assert 'mean: model [123.675, 116.28, 103.53], config [0.0, 0.0, 0.0]' \
        in message
    assert 'input_size' not in message and 'std' not in message

    # A model without the metadata.
    import onnx
    proto = onnx.load(mobilenet['onnx'])
    del proto.metadata_props[:]
    bare = str(tmp_path / 'bare.onnx')
    onnx.save(proto, bare)
    with pytest.raises(ValueError,
                       match='bare.onnx has no input_size, channel_order, '
                       'mean, std in its metadata: export it with '
                       'tools/deployment/export_onnx.py'):
        ONNXReIDInferencer(mobilenet['cfg'], bare)


@pytest.mark.shared_data
def test_backend_choice_and_errors(mobilenet, tmp_path):
    assert resolve_backend('m.onnx') == 'onnx'
    assert resolve_backend('m.ONNX') == 'onnx'
    assert resolve_backend('epoch_1.pth') == 'pytorch'
    assert resolve_backend('m.onnx', 'pytorch') == 'pytorch'
    with pytest.raises(ValueError, match='backend must be one of'):
        resolve_backend('m.onnx', 'tensorrt')
    inferencer = build_inferencer(mobilenet['cfg'], mobilenet['onnx'])
    assert isinstance(inferencer, ONNXReIDInferencer)
    assert inferencer.model is None
    with pytest.raises(ValueError, match="device must be 'cpu', got 'cuda'"):
        ONNXReIDInferencer(mobilenet['cfg'], mobilenet['onnx'],
                           device='cuda')
    with pytest.raises(FileNotFoundError, match='missing.onnx'):
        ONNXReIDInferencer(mobilenet['cfg'], str(tmp_path / 'missing.onnx'))
    garbage = tmp_path / 'garbage.onnx'
    garbage.write_bytes(b'not a model')
    with pytest.raises(ValueError, match='garbage.onnx cannot be loaded'):
        ONNXReIDInferencer(mobilenet['cfg'], str(garbage))
    # The output is protected before any work.
    with pytest.raises(FileExistsError,
                       match='already exists; pass --overwrite'):
        export_onnx(mobilenet['cfg'], mobilenet['checkpoint'],
                    mobilenet['onnx'])
    with pytest.raises(ValueError, match='must be a .onnx file'):
        export_onnx(mobilenet['cfg'], mobilenet['checkpoint'],
                    str(tmp_path / 'model.pth'))
