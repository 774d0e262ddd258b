"""Feature extraction and retrieval with a trained re-ID model."""
import copy
import os.path as osp
import sys
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar
from torch.utils.data import DataLoader, Dataset

from mmreid_rcl.datasets.base_reid_dataset import (IMG_EXTENSIONS,
                                                   list_image_files)
from mmreid_rcl.engine.runner.state_dict_check import load_checkpoint_checked
from mmreid_rcl.registry import DATASETS, MODELS
from .retrieval import rank_gallery

InputType = Union[str, np.ndarray]
InputsType = Union[InputType, Sequence[InputType]]


def resolve_image_inputs(inputs: InputsType) -> List[InputType]:
    """Turn the accepted input forms into a flat list of paths and arrays.

    Args:
        inputs (str | np.ndarray | Sequence): An image file, a folder (its
            images are found recursively and sorted by relative path), an
            (H, W, 3) ``uint8`` array, or a list of image files and arrays.

    Returns:
        list[str | np.ndarray]: One entry per image, in order.

    Raises:
        FileNotFoundError: A path does not exist.
        ValueError: A folder holds no image, an array has the wrong shape
            or type, or nothing was given.
    """
    if isinstance(inputs, (str, np.ndarray)) or hasattr(inputs, '__fspath__'):
        inputs = [inputs]
    items: List[InputType] = []
    for i, item in enumerate(inputs):
        if hasattr(item, '__fspath__'):
            item = str(item)
        if isinstance(item, np.ndarray):
            if item.ndim != 3 or item.shape[2] != 3 or item.dtype != np.uint8:
                raise ValueError(
                    f'input array {i} must be an (H, W, 3) uint8 BGR image, '
                    f'got shape {item.shape} and dtype {item.dtype}')
            items.append(item)
        elif isinstance(item, str):
            if osp.isdir(item):
                files = list_image_files(item, recursive=True)
                if not files:
                    raise ValueError(
                        f'no image found under the folder {item!r} (looked '
                        f'recursively for {", ".join(IMG_EXTENSIONS)})')
                items.extend(files)
            elif osp.isfile(item):
                items.append(item)
            else:
                raise FileNotFoundError(
                    f'input {item!r} is neither an image file nor a folder')
        else:
            raise TypeError(f'input {i} must be a path or a numpy array, got '
                            f'{type(item).__name__}')
    if not items:
        raise ValueError('no input images given')
    return items


def _is_loading(transform: Union[dict, object]) -> bool:
    name = transform.get('type') if isinstance(transform, dict) else type(
        transform).__name__
    name = name if isinstance(name, str) else getattr(name, '__name__', '')
    return name.rsplit('.', 1)[-1].startswith('Load')


class _InputDataset(Dataset):
    """Images through the test pipeline; arrays skip its loading step."""

    def __init__(self, items: List[InputType], pipeline: Compose,
                 array_pipeline: Compose) -> None:
        self.items = items
        self.pipeline = pipeline
        self.array_pipeline = array_pipeline

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, idx: int) -> dict:
        item = self.items[idx]
        if isinstance(item, str):
            return self.pipeline(dict(img_path=item))
        return self.array_pipeline(
            dict(img=item, img_shape=item.shape[:2],
                 ori_shape=item.shape[:2]))


def _split_dataset_cfg(cfg: Config, split: str) -> dict:
    for key in ('test_dataloader', 'val_dataloader'):
        loader = cfg.get(key)
        if loader and loader.get('dataset'):
            dataset = copy.deepcopy(loader['dataset'])
            dataset.update(split=split, pipeline=[])
            if split == 'train':
                dataset['test_mode'] = True
            return dataset
    raise ValueError('the config defines neither test_dataloader.dataset nor '
                     'val_dataloader.dataset: no data set to read')


def load_split_samples(cfg: Config, split: str) -> Dict[str, object]:
    """Files, identities and cameras of one split of the config's data.

    The data set of ``cfg.test_dataloader`` (or ``val_dataloader``) is
    built with ``split`` replaced, so the same data root and file-name
    rules apply.

    Args:
        cfg (Config): The config (default scope set, modules registered).
        split (str): ``'train'``, ``'query'``, ``'gallery'`` or ``'test'``
            (query then gallery).

    Returns:
        dict: ``filenames`` (list of str), ``pids``, ``camids`` (int64
        arrays) and ``is_query`` (bool array), in data set order, and the
        ``dataset_name``.
    """
    dataset = DATASETS.build(_split_dataset_cfg(cfg, split))
    return dict(
        filenames=[
            dataset.get_data_info(i)['img_path'] for i in range(len(dataset))
        ],
        pids=dataset.get_person_ids(),
        camids=dataset.get_camera_ids(),
        is_query=dataset.get_query_flags(),
        dataset_name=dataset.dataset_name)


class ReIDInferencer:
    """Extract L2-normalised features of images and rank a gallery.

    The model is built from the config through the registries, loaded from
    the checkpoint and put in eval mode. Images go through the config's
    test pipeline (``test_dataloader.dataset.pipeline``, else the
    validation one) and the model's data preprocessor, exactly as in
    testing. Numpy inputs are taken as ``(H, W, 3)`` ``uint8`` in **BGR**
    order, what ``LoadReIDImage`` (and ``cv2.imread``) produce, and enter
    the pipeline after its loading step.

    Example:
        >>> inferencer = ReIDInferencer('configs/...py', 'epoch_12.pth')
        >>> feats, names = inferencer.extract('gallery/',
        ...                                   return_filenames=True)
        >>> result = inferencer.search('query.jpg', 'gallery/', topk=5)

    Args:
        config (str | Config): Config file or object.
        checkpoint (str, optional): Checkpoint to load (read in full, see
            :func:`mmreid_rcl.engine.runner.load_local_checkpoint`). None
            keeps the config's initialisation (``init_weights``), with a
            warning.
        device (str): Torch device. Defaults to ``'cpu'``.
        batch_size (int): Images per forward pass. Defaults to 64.
        num_workers (int): Data-loader workers reading the images.
            Defaults to 0 (the main process).
        cfg_options (dict, optional): Overrides merged into the config.
        allow_partial (bool): Keep a checkpoint that does not fit the model
            (see :func:`~mmreid_rcl.engine.runner.state_dict_check.
            load_checkpoint_checked`) instead of raising. Defaults to False.
    """

    def __init__(self,
                 config: Union[str, Config],
                 checkpoint: Optional[str] = None,
                 device: str = 'cpu',
                 batch_size: int = 64,
                 num_workers: int = 0,
                 cfg_options: Optional[dict] = None,
                 allow_partial: bool = False) -> None:
        from mmreid_rcl.utils import register_all_modules
        if isinstance(config, (str, )) or hasattr(config, '__fspath__'):
            config = str(config)
            if not osp.isfile(config):
                raise FileNotFoundError(f'config {config!r} does not exist')
            cfg = Config.fromfile(config)
        elif isinstance(config, Config):
            cfg = copy.deepcopy(config)
        else:
            raise TypeError('config must be a file path or an mmengine '
                            f'Config, got {type(config).__name__}')
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        if int(batch_size) < 1 or int(num_workers) < 0:
            raise ValueError('batch_size must be >= 1 and num_workers >= 0, '
                             f'got {batch_size} and {num_workers}')
        register_all_modules(init_default_scope=False)
        init_default_scope(cfg.get('default_scope', 'mmreid_rcl'))
        self.cfg = cfg
        self.checkpoint = checkpoint
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.device = torch.device(device)

        if cfg.get('model') is None:
            raise ValueError('the config has no "model" to build')
        self.model = self._build_model(checkpoint, allow_partial)

        pipeline = self._test_pipeline_cfg(cfg)
        self.pipeline = Compose(pipeline)
        self.array_pipeline = Compose(
            [t for t in pipeline if not _is_loading(t)])

    def _build_model(self, checkpoint: Optional[str],
                     allow_partial: bool) -> torch.nn.Module:
        """The config's model with the checkpoint's weights, in eval mode
        on the device."""
        model = MODELS.build(self.cfg.model)
        if checkpoint is None:
            warnings.warn('no checkpoint given: features come from the '
                          "config's initial weights")
            model.init_weights()
        else:
            if not osp.isfile(checkpoint):
                raise FileNotFoundError(
                    f'checkpoint {checkpoint!r} does not exist')
            match = load_checkpoint_checked(model, checkpoint, allow_partial)
            if not match.exact:
                warnings.warn(f'checkpoint {checkpoint!r} loaded partially: '
                              f'{match.describe()}')
        return model.to(self.device).eval()

    @staticmethod
    def _test_pipeline_cfg(cfg: Config) -> list:
        for key in ('test_dataloader', 'val_dataloader'):
            pipeline = cfg.get(key, {}).get('dataset', {}).get('pipeline')
            if pipeline:
                return copy.deepcopy(list(pipeline))
        for key in ('test_pipeline', 'val_pipeline'):
            if cfg.get(key):
                return copy.deepcopy(list(cfg.get(key)))
        raise ValueError('the config defines no test pipeline: expected '
                         'test_dataloader.dataset.pipeline (or the '
                         'validation one)')

    @staticmethod
    def list_inputs(inputs: InputsType) -> List[InputType]:
        """The images :meth:`extract` would read, in order.

        See :func:`resolve_image_inputs`.
        """
        return resolve_image_inputs(inputs)

    def extract(
        self,
        inputs: InputsType,
        return_filenames: bool = False,
        progress: bool = True
    ) -> Union[np.ndarray, Tuple[np.ndarray, List[Optional[str]]]]:
        """Features of images, in input order.

        Args:
            inputs (str | np.ndarray | Sequence): An image file, a folder
                (searched recursively, files sorted), a BGR ``uint8``
                (H, W, 3) array, or a list of files and arrays.
            return_filenames (bool): Also return the file read for each
                row (None for arrays). Defaults to False.
            progress (bool): Show a progress bar when there is more than one
                batch. Defaults to True.

        Returns:
            np.ndarray | tuple: float32 features of shape (N, D), each row
            of unit L2 norm; with ``return_filenames`` also the list of N
            file names.
        """
        items = resolve_image_inputs(inputs)
        loader = DataLoader(
            _InputDataset(items, self.pipeline, self.array_pipeline),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            shuffle=False,
            collate_fn=pseudo_collate)
        # sys.stdout of now, not of import time: output can be redirected.
        bar = ProgressBar(len(items), file=sys.stdout) if (
            progress and len(loader) > 1) else None
        chunks = []
        with torch.inference_mode():
            for batch in loader:
                feats = self._batch_features(batch)
                chunks.append(
                    F.normalize(feats.float(), dim=1).cpu().numpy())
                if bar is not None:
                    bar.update(len(feats))
        if bar is not None:
            print(flush=True)
        features = np.concatenate(chunks).astype(np.float32, copy=False)
        if return_filenames:
            return features, [
                item if isinstance(item, str) else None for item in items
            ]
        return features

    def _batch_features(self, batch: dict) -> torch.Tensor:
        """(N, D) features of a collated batch: the data preprocessor, then
        the model in tensor mode."""
        data = self.model.data_preprocessor(batch, False)
        feats = self.model(data['inputs'], mode='tensor')
        if not isinstance(feats, torch.Tensor) or feats.dim() != 2:
            raise TypeError(
                f'{type(self.model).__name__} in tensor mode must '
                'return (N, D) features, got '
                f'{getattr(feats, "shape", type(feats))}')
        return feats

    def load_split(self, split: str) -> Dict[str, object]:
        """Files, identities and cameras of a split of the config's data.

        See :func:`load_split_samples`.
        """
        return load_split_samples(self.cfg, split)

    @staticmethod
    def rank(query_feats: np.ndarray,
             gallery_feats: np.ndarray,
             topk: int = 10,
             metric: str = 'euclidean',
             **ids) -> Tuple[np.ndarray, np.ndarray]:
        """Gallery indices of every query by ascending distance.

        Distances are :func:`mmreid_rcl.evaluation.compute_distance`
        (squared euclidean on normalised features by default); ties go to
        the lower gallery index.

        Args:
            query_feats (np.ndarray): Shape (Q, D).
            gallery_feats (np.ndarray): Shape (G, D).
            topk (int): Entries kept per query. Defaults to 10.
            metric (str): ``'euclidean'`` or ``'cosine'``.
            **ids: ``q_pids``, ``g_pids``, ``q_camids``, ``g_camids`` to
                apply the re-ID protocol (see
                :func:`~mmreid_rcl.apis.rank_gallery`).

        Returns:
            tuple[np.ndarray, np.ndarray]: ``indices`` (int64) and
            ``distances`` (float32) of shape (Q, min(topk, G)).
        """
        return rank_gallery(query_feats, gallery_feats, topk, metric,
                            **ids)

    def search(self,
               query: InputsType,
               gallery: InputsType,
               topk: int = 10,
               metric: str = 'euclidean') -> Dict[str, object]:
        """Extract query and gallery features and rank the gallery.

        Args:
            query, gallery: Images as accepted by :meth:`extract`.
            topk (int): Entries kept per query. Defaults to 10.
            metric (str): ``'euclidean'`` or ``'cosine'``.

        Returns:
            dict: ``indices`` and ``distances`` (Q, k) as in :meth:`rank`,
            ``query_filenames``, ``gallery_filenames`` and the features
            ``query_features``, ``gallery_features``.
        """
        q_feats, q_names = self.extract(query, return_filenames=True)
        g_feats, g_names = self.extract(gallery, return_filenames=True)
        indices, distances = self.rank(q_feats, g_feats, topk, metric)
        return dict(
            indices=indices,
            distances=distances,
            query_filenames=q_names,
            gallery_filenames=g_names,
            query_features=q_feats,
            gallery_features=g_feats)
