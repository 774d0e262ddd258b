"""Export a re-ID model to ONNX: backbone, neck and L2 normalisation.

The ONNX model takes the images as the data preprocessor hands them to the
network, ``(N, 3, H, W)`` float32, resized by the config's test pipeline
and normalised, and returns ``(N, D)`` L2-normalised features. How to get
there from a decoded image (size, channel order, mean and std) is written
into the model's ``metadata_props``, which :class:`ONNXReIDInferencer`
checks against the config it is given.
"""
import json
import os
import os.path as osp
import warnings
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config

from mmreid_rcl.utils.output_files import check_outputs

#: Names of the graph's input and output.
ONNX_INPUT = 'images'
ONNX_OUTPUT = 'features'
#: ONNX 1.12 / onnxruntime 1.12 and later, TensorRT 8.6 and later read it;
#: every operator of the re-ID networks here exists in it.
DEFAULT_OPSET = 17
#: The pre-processing entries of ``metadata_props`` (JSON values) that
#: must agree with the config at inference.
PREPROCESS_KEYS = ('input_size', 'channel_order', 'mean', 'std')


def require_onnx(package: str = 'onnx'):
    """Import ``onnx`` or ``onnxruntime``, or say how to install it."""
    try:
        if package == 'onnxruntime':
            import onnxruntime as module
        else:
            import onnx as module
    except ImportError as err:
        raise ImportError(
            f'the ONNX tools need the {package} package ({err}); install the '
            'optional requirements: pip install -r requirements/optional.txt'
        ) from None
    return module


class ReIDFeatureNet(nn.Module):
    """What is exported: normalised images -> L2-normalised features.

    Args:
        model (nn.Module): A re-ID model whose ``forward(x, mode='tensor')``
            returns (N, D) features (``UnsupervisedReID``,
            ``SupervisedReID``).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) float32 -> (N, D) float32 of unit L2 norm."""
        return F.normalize(self.model(images, mode='tensor').float(), dim=1)


def preprocess_settings(data_preprocessor: nn.Module,
                        input_size: Tuple[int, int]) -> Dict[str, object]:
    """The pre-processing a model's input needs, for ``metadata_props``.

    Args:
        data_preprocessor (nn.Module): A built ``ReIDDataPreprocessor`` (an
            mmengine ``ImgDataPreprocessor``).
        input_size (tuple[int, int]): (H, W) the test pipeline gives.

    Returns:
        dict: ``input_size`` [H, W]; ``channel_order`` of the network's
        input, ``'RGB'`` when the preprocessor swaps the BGR images the
        pipeline decodes, else ``'BGR'``; ``mean`` and ``std`` in that
        order on the 0-255 scale (None: no normalisation).
    """
    swap = bool(getattr(data_preprocessor, '_channel_conversion', False))
    if getattr(data_preprocessor, '_enable_normalize', False):
        # The buffers are float32: 7 significant digits give the values
        # of the config back (123.675, not 123.67500305175781).
        mean = [float(f'{v:.7g}') for v in data_preprocessor.mean.flatten()]
        std = [float(f'{v:.7g}') for v in data_preprocessor.std.flatten()]
    else:
        mean = std = None
    return dict(
        input_size=[int(input_size[0]), int(input_size[1])],
        channel_order='RGB' if swap else 'BGR',
        mean=mean,
        std=std)


def pipeline_input_size(array_pipeline) -> Tuple[int, int]:
    """(H, W) of the images the test pipeline gives.

    Two blank images of different sizes go through the pipeline (after its
    loading step); they must come out at one size.

    Raises:
        ValueError: The pipeline does not resize to one size.
    """
    sizes = []
    for shape in ((300, 120, 3), (97, 211, 3)):
        img = np.zeros(shape, np.uint8)
        packed = array_pipeline(
            dict(img=img, img_shape=shape[:2], ori_shape=shape[:2]))
        sizes.append(tuple(int(v) for v in packed['inputs'].shape[-2:]))
    if sizes[0] != sizes[1]:
        raise ValueError(
            'the test pipeline does not resize images to one size (it gave '
            f'{sizes[0]} and {sizes[1]} for two inputs): an ONNX model needs '
            'a fixed input size; add a Resize with keep_ratio=False')
    return sizes[0]


def _trace_to_onnx(net: nn.Module, dummy: torch.Tensor, path: str,
                   opset: int) -> int:
    """Trace ``net`` on ``dummy`` into ``path``, batch axis dynamic.

    Returns:
        int: D, the feature dimension seen while tracing (the graph's
        output has a symbolic shape).
    """
    out_shapes = []
    hook = net.register_forward_hook(
        lambda module, args, output: out_shapes.append(tuple(output.shape)))
    with warnings.catch_warnings():
        # The shape checks of the modules are constants in the trace,
        # and the TorchScript-based exporter (no extra dependency) is
        # announced as legacy.
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.onnx.export(
            net, (dummy, ),
            path,
            dynamo=False,
            opset_version=int(opset),
            input_names=[ONNX_INPUT],
            output_names=[ONNX_OUTPUT],
            dynamic_axes={
                ONNX_INPUT: {
                    0: 'batch'
                },
                ONNX_OUTPUT: {
                    0: 'batch'
                }
            },
            do_constant_folding=True)
    hook.remove()
    return int(out_shapes[-1][1])


def _export_metadata(settings: Dict[str, object], feat_dim: int,
                     model: nn.Module, config: Union[str, Config],
                     checkpoint: str,
                     test_pipeline: object) -> Dict[str, str]:
    """The ``metadata_props`` of the exported model, JSON values."""
    return dict(
        {k: json.dumps(v)
         for k, v in settings.items()},
        bgr_to_rgb=json.dumps(settings['channel_order'] == 'RGB'),
        input_layout=json.dumps(
            'NCHW float32: the decoded (BGR) image resized to '
            'input_size, its channels put in channel_order, then (x - '
            'mean) / std per channel on the 0-255 scale'),
        output=json.dumps(f'(N, {feat_dim}) float32, unit L2 norm'),
        feature_dim=json.dumps(feat_dim),
        model=json.dumps(type(model).__name__),
        config=json.dumps(
            str(config) if not isinstance(config, Config) else
            (config.filename or 'a Config object')),
        checkpoint=json.dumps(str(checkpoint)),
        test_pipeline=json.dumps(test_pipeline, default=str))


def _write_metadata(onnx, path: str, metadata: Dict[str, str]) -> None:
    """Replace the ``metadata_props`` of the ONNX file ``path``, check and
    save it."""
    proto = onnx.load(path)
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = (
        'mmreid_rcl re-ID features: see metadata_props for the input '
        'size and normalisation')
    onnx.checker.check_model(proto)
    onnx.save(proto, path)


def _max_cosine_distance(path: str, net: nn.Module, height: int,
                         width: int) -> Optional[float]:
    """Largest cosine distance between onnxruntime's and PyTorch's features
    of 3 random inputs; None without onnxruntime."""
    try:
        ort = require_onnx('onnxruntime')
    except ImportError:
        return None
    images = torch.randn(
        3, 3, height, width, generator=torch.Generator().manual_seed(1))
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    ours = session.run(None, {ONNX_INPUT: images.numpy()})[0]
    with torch.inference_mode():
        ref = net(images).numpy()
    return float(np.max(1.0 - (ours.astype(np.float64) * ref).sum(1)))


def export_onnx(config: Union[str, Config],
                checkpoint: str,
                out: str,
                opset: int = DEFAULT_OPSET,
                overwrite: bool = False,
                allow_partial: bool = False,
                cfg_options: Optional[dict] = None,
                verify: bool = True) -> Dict[str, object]:
    """Export the config's model with the checkpoint's weights to ONNX.

    The model is built and loaded by :class:`ReIDInferencer` (the
    checkpoint is checked to fit it), traced on the CPU with a dynamic
    batch axis and saved with the pre-processing in ``metadata_props``.

    Args:
        config (str | Config): The model's config.
        checkpoint (str): Its checkpoint.
        out (str): The ``.onnx`` file to write.
        opset (int): ONNX opset. Defaults to :data:`DEFAULT_OPSET`.
        overwrite (bool): Replace an existing ``out``. Defaults to False.
        allow_partial (bool): Export a checkpoint that does not fit the
            model. Defaults to False.
        cfg_options (dict, optional): Overrides merged into the config.
        verify (bool): Run the saved model with onnxruntime (when it is
            installed) on random inputs against PyTorch. Defaults to True.

    Returns:
        dict: ``out``, ``metadata`` (str -> str, as written) and
        ``max_cosine_distance`` between onnxruntime and PyTorch features
        of 3 random inputs (None without ``verify`` or onnxruntime).

    Raises:
        FileExistsError: ``out`` exists and ``overwrite`` is off.
        FileNotFoundError: The config or the checkpoint is missing.
        ValueError: ``out`` is not a .onnx file, or the test pipeline does
            not give one image size.
        ImportError: The onnx package is missing.
    """
    from .inferencer import ReIDInferencer
    if not str(out).lower().endswith('.onnx'):
        raise ValueError(f'--out must be a .onnx file, got {out}')
    check_outputs(out, overwrite)
    onnx = require_onnx('onnx')
    if checkpoint is None or not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint!r} does not exist')
    inferencer = ReIDInferencer(
        config,
        checkpoint,
        device='cpu',
        cfg_options=cfg_options,
        allow_partial=allow_partial)
    model = inferencer.model
    height, width = pipeline_input_size(inferencer.array_pipeline)
    settings = preprocess_settings(model.data_preprocessor, (height, width))
    net = ReIDFeatureNet(model).eval()
    dummy = torch.randn(
        2, 3, height, width, generator=torch.Generator().manual_seed(0))

    folder = osp.dirname(osp.abspath(out))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder, f'.{osp.basename(out)}.{os.getpid()}.tmp')
    try:
        feat_dim = _trace_to_onnx(net, dummy, tmp, opset)
        metadata = _export_metadata(
            settings, feat_dim, model, config, checkpoint,
            ReIDInferencer._test_pipeline_cfg(inferencer.cfg))
        _write_metadata(onnx, tmp, metadata)
        os.replace(tmp, out)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)

    distance = None
    if verify:
        distance = _max_cosine_distance(out, net, height, width)
    return dict(out=out, metadata=metadata, max_cosine_distance=distance)


def read_onnx_metadata(path: str) -> Dict[str, object]:
    """The ``metadata_props`` of an ONNX file, JSON values decoded.

    Values that are not JSON are returned as the stored strings.
    """
    onnx = require_onnx('onnx')
    proto = onnx.load(path, load_external_data=False)
    out = {}
    for entry in proto.metadata_props:
        try:
            out[entry.key] = json.loads(entry.value)
        except ValueError:
            out[entry.key] = entry.value
    return out
