"""The synthetic re-ID data set, generated under its root when needed."""
from typing import Optional, Sequence

from mmengine.dist import broadcast_object_list, get_dist_info

from mmreid_rcl.registry import DATASETS
from ..market1501 import Market1501Dataset
from .generator import generate_synthetic_reid, synthetic_params


@DATASETS.register_module()
class SyntheticReIDDataset(Market1501Dataset):
    """Synthetic pedestrians in the Market-1501 layout, made on first use.

    On construction the data are generated under ``data_root`` by
    :func:`generate_synthetic_reid` unless they are already there, complete
    and made with the same parameters and generator version (the check
    reads ``meta.json`` and counts the files). In distributed runs only
    rank 0 generates; the other ranks wait for it and then read the files,
    so ``data_root`` must be on storage shared by the ranks.

    Example config::

        dict(type='SyntheticReIDDataset', data_root='data/synthetic_reid',
             split='train', generator_cfg=dict(num_train_ids=100, seed=1),
             pipeline=train_pipeline)

    Args:
        data_root (str): Folder of the data. Defaults to
            ``'data/synthetic_reid'``.
        split (str): ``'train'``, ``'query'``, ``'gallery'`` or ``'test'``.
            Defaults to ``'train'``.
        pipeline (Sequence[dict | Callable]): Data transforms.
            Defaults to ().
        generator_cfg (dict, optional): Keyword arguments of
            :func:`generate_synthetic_reid` (sizes, seed, image format,
            ``progress``). ``force`` is not accepted: a folder that holds
            other data is never replaced from a config. Defaults to None.
        **kwargs: Arguments of :class:`Market1501Dataset`. ``num_cameras``
            defaults to the generated number of cameras.
    """

    METAINFO: dict = dict(dataset_name='SyntheticReID')

    def __init__(self,
                 data_root: str = 'data/synthetic_reid',
                 split: str = 'train',
                 pipeline: Sequence = (),
                 generator_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        generator_cfg = dict(generator_cfg or {})
        if 'force' in generator_cfg:
            raise ValueError('generator_cfg may not set force; run '
                             'tools/make_synthetic_data.py --force instead')
        progress = generator_cfg.pop('progress', True)
        # Fails early, on every rank, on a bad parameter.
        params = synthetic_params(**generator_cfg)
        self.generator_cfg = params
        self._prepare(data_root, params, progress)
        kwargs.setdefault('num_cameras', params['num_cameras'])
        super().__init__(
            data_root=data_root, split=split, pipeline=pipeline, **kwargs)

    @staticmethod
    def _prepare(data_root: str, params: dict, progress: bool) -> None:
        """Generate on rank 0; every rank returns once the data are there.

        The outcome of rank 0 is broadcast (which also synchronises the
        ranks) so that a failed generation raises on every rank instead of
        leaving the others waiting.
        """
        rank, world_size = get_dist_info()
        error = None
        if rank == 0:
            try:
                generate_synthetic_reid(
                    data_root, progress=progress, **params)
            except Exception as exc:  # re-raised below, on every rank
                if world_size == 1:
                    raise
                error = f'{type(exc).__name__}: {exc}'
        if world_size > 1:
            outcome = [error]
            broadcast_object_list(outcome, src=0)
            error = outcome[0]
        if error is not None:
            raise RuntimeError(
                f'generating the synthetic data set failed: {error}')
