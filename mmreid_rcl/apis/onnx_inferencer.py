"""Feature extraction with an exported ONNX model, on the CPU."""
import os.path as osp
from typing import Dict, List, Optional, Union

import numpy as np
import torch
from mmengine.config import Config

from mmreid_rcl.registry import MODELS
from .inferencer import ReIDInferencer
from .onnx_export import (PREPROCESS_KEYS, pipeline_input_size,
                          preprocess_settings, read_onnx_metadata,
                          require_onnx)

BACKENDS = ('auto', 'pytorch', 'onnx')


def preprocess_mismatches(model_settings: Dict[str, object],
                          config_settings: Dict[str, object]) -> List[str]:
    """How the pre-processing of an ONNX model and a config differ.

    Args:
        model_settings (dict): From the model's metadata
            (:data:`~mmreid_rcl.apis.onnx_export.PREPROCESS_KEYS`).
        config_settings (dict): From
            :func:`~mmreid_rcl.apis.onnx_export.preprocess_settings`.

    Returns:
        list[str]: One ``'key: model X, config Y'`` per difference; empty
        when they agree (mean and std up to a relative 1e-6).
    """
    found = []
    for key in PREPROCESS_KEYS:
        ours, theirs = model_settings.get(key), config_settings.get(key)
        if key in ('mean', 'std') and ours is not None and \
                theirs is not None:
            same = len(ours) == len(theirs) and np.allclose(
                ours, theirs, rtol=1e-6, atol=1e-6)
        else:
            same = ours == theirs
        if not same:
            found.append(f'{key}: model {ours}, config {theirs}')
    return found


class ONNXReIDInferencer(ReIDInferencer):
    """:class:`ReIDInferencer` with an exported ONNX model (onnxruntime,
    CPU).

    Images go through the config's test pipeline and data preprocessor
    exactly as with the PyTorch model, then through the ONNX model made by
    :func:`~mmreid_rcl.apis.export_onnx` (``tools/deployment/
    export_onnx.py``). The input size, channel order, mean and std written
    in the model's metadata must be those of the config, else the
    constructor raises an error naming each difference.

    Args:
        config (str | Config): The config the model was exported with (its
            test pipeline and ``model.data_preprocessor`` are used; no
            network is built).
        onnx_model (str): The ``.onnx`` file.
        device (str): Only ``'cpu'``.
        batch_size (int): Images per run. Defaults to 64.
        num_workers (int): Data-loader workers. Defaults to 0.
        cfg_options (dict, optional): Overrides merged into the config.
        num_threads (int, optional): onnxruntime's intra-op threads; None
            for its default (the physical cores).
    """

    def __init__(self,
                 config: Union[str, Config],
                 onnx_model: str,
                 device: str = 'cpu',
                 batch_size: int = 64,
                 num_workers: int = 0,
                 cfg_options: Optional[dict] = None,
                 num_threads: Optional[int] = None) -> None:
        if str(device) != 'cpu':
            raise ValueError('the ONNX backend runs on the CPU '
                             f"(onnxruntime): device must be 'cpu', got "
                             f'{device!r}')
        self.num_threads = num_threads
        super().__init__(
            config,
            onnx_model,
            device='cpu',
            batch_size=batch_size,
            num_workers=num_workers,
            cfg_options=cfg_options)
        self.check_preprocessing()

    def _build_model(self, checkpoint: Optional[str],
                     allow_partial: bool) -> None:
        """Open the ONNX model; build the config's data preprocessor."""
        ort = require_onnx('onnxruntime')
        if checkpoint is None or not osp.isfile(checkpoint):
            raise FileNotFoundError(
                f'ONNX model {checkpoint!r} does not exist')
        self.onnx_model = checkpoint
        self.data_preprocessor = MODELS.build(
            self.cfg.model.get('data_preprocessor')
            or dict(type='ReIDDataPreprocessor')).eval()
        options = ort.SessionOptions()
        if self.num_threads:
            options.intra_op_num_threads = int(self.num_threads)
        try:
            self.session = ort.InferenceSession(
                checkpoint, options, providers=['CPUExecutionProvider'])
        except Exception as err:  # onnxruntime's own exception types
            raise ValueError(f'ONNX model {checkpoint} cannot be loaded by '
                             f'onnxruntime: {err}') from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or \
                inputs[0].shape[1] != 3:
            raise ValueError(
                f'ONNX model {checkpoint} must take one (N, 3, H, W) input, '
                f'got {[(i.name, i.shape) for i in inputs]}')
        self.input_name = inputs[0].name
        self.output_name = outputs[0].name
        self.metadata = read_onnx_metadata(checkpoint)
        return None

    def check_preprocessing(self) -> None:
        """Refuse a config whose pre-processing is not the model's.

        Raises:
            ValueError: The model has no pre-processing metadata, or it
                differs from the config's test pipeline (input size) and
                data preprocessor (channel order, mean, std).
        """
        missing = [k for k in PREPROCESS_KEYS if k not in self.metadata]
        if missing:
            raise ValueError(
                f'ONNX model {self.onnx_model} has no {", ".join(missing)} '
                'in its metadata: export it with '
                'tools/deployment/export_onnx.py')
        config = preprocess_settings(
            self.data_preprocessor, pipeline_input_size(self.array_pipeline))
        found = preprocess_mismatches(self.metadata, config)
        if found:
            name = self.cfg.filename or 'the config'
            raise ValueError(
                f'ONNX model {self.onnx_model} and {name} disagree on the '
                f'pre-processing: {"; ".join(found)}. Use the config the '
                'model was exported with, or export it again with this one')

    def _batch_features(self, batch: dict) -> torch.Tensor:
        """The data preprocessor, then onnxruntime."""
        data = self.data_preprocessor(batch, False)
        images = data['inputs'].float().contiguous().numpy()
        feats = self.session.run([self.output_name],
                                 {self.input_name: images})[0]
        return torch.from_numpy(np.asarray(feats, dtype=np.float32))


def resolve_backend(model_file: str, backend: str = 'auto') -> str:
    """``'onnx'`` or ``'pytorch'``; ``'auto'`` goes by the extension.

    Raises:
        ValueError: An unknown backend.
    """
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {", ".join(BACKENDS)}, '
                         f'got {backend!r}')
    if backend == 'auto':
        return 'onnx' if str(model_file).lower().endswith(
            '.onnx') else 'pytorch'
    return backend


def build_inferencer(config: Union[str, Config],
                     model_file: Optional[str],
                     backend: str = 'auto',
                     **kwargs) -> ReIDInferencer:
    """A :class:`ReIDInferencer` or an :class:`ONNXReIDInferencer`.

    Args:
        config (str | Config): The config.
        model_file (str, optional): A checkpoint, or an ``.onnx`` model;
            None: the config's initial weights (PyTorch).
        backend (str): ``'pytorch'``, ``'onnx'`` or ``'auto'`` (``onnx``
            for a ``.onnx`` file). Defaults to ``'auto'``.
        **kwargs: Passed to the inferencer (``device``, ``batch_size``,
            ``num_workers``, ``cfg_options``).
    """
    if resolve_backend(model_file, backend) == 'onnx':
        return ONNXReIDInferencer(config, model_file, **kwargs)
    return ReIDInferencer(config, model_file, **kwargs)
