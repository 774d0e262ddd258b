"""Re-clustering of the train split before every training epoch."""
import copy
import inspect
import time
from typing import Optional, Union

import numpy as np
import torch
from mmengine.dist import broadcast, get_dist_info, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmreid_rcl.clustering import BaseLabelGenerator
from mmreid_rcl.clustering.labels import contiguous_labels
from mmreid_rcl.engine.dataset_features import extract_dataset_features
from mmreid_rcl.registry import HOOKS, LABEL_GENERATORS


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


@HOOKS.register_module()
class ReClusterHook(Hook):
    """Cluster the train split into pseudo identities before each epoch.

    Before every ``interval``-th training epoch: extract L2-normalised
    features of the whole train split with the test pipeline (sharded over
    ranks), cluster them on rank 0 with ``label_generator`` and broadcast
    the labels (with several ranks and a generator that ``shards_knn``,
    such as ``DBSCANLabelGenerator``, every rank first searches its share
    of the kNN lists, and rank 0 clusters with them), then hand the pseudo
    labels to the model (which rebuilds its cluster memory) and to the
    train sampler. Outliers (-1) sit out the epoch. When the dataset knows
    the true ids, the purity, NMI and ARI of the pseudo labels and their
    cross-camera recall (the share of a person's image pairs from two
    cameras put in one cluster) are logged; they are never used for
    training.

    Args:
        label_generator (dict | BaseLabelGenerator): the clustering, or
            its config, e.g.
            ``dict(type='DBSCANLabelGenerator', eps=0.6, min_samples=4)``.
        dataloader (dict, optional): the loader of the train split with the
            test pipeline. Defaults to the config's ``cluster_dataloader``.
        interval (int): re-cluster every this many epochs. Defaults to 1.
        log_quality (bool): log purity / NMI / ARI when true ids exist.
        cluster_after_train (bool): cluster once more with the final model
            after training, for the diagnostics only (the quality of the
            pseudo labels the trained model would give). Defaults to True.

    Per-clustering figures are written to the scalar logs (``cluster/*``)
    at step = the number of epochs trained before that clustering, with the
    wall time of every epoch (``epoch/time``, clustering included).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 label_generator: Union[dict, BaseLabelGenerator] = dict(
                     type='DBSCANLabelGenerator'),
                 dataloader: Optional[dict] = None,
                 interval: int = 1,
                 log_quality: bool = True,
                 cluster_after_train: bool = True) -> None:
        if isinstance(label_generator, dict):
            label_generator = LABEL_GENERATORS.build(label_generator)
        self.label_generator = label_generator
        self.dataloader_cfg = dataloader
        self._dataloader = None
        self.interval = int(interval)
        self.log_quality = log_quality
        self.cluster_after_train = cluster_after_train
        self._epoch_start = None

    # -- helpers ----------------------------------------------------------
    def _get_dataloader(self, runner):
        if self._dataloader is None:
            cfg = self.dataloader_cfg
            if cfg is None:
                cfg = runner.cfg.get('cluster_dataloader')
            if cfg is None:
                raise KeyError(
                    'ReClusterHook needs a dataloader over the train split '
                    'with the test pipeline: set `cluster_dataloader` in the '
                    'config or `dataloader=` of the hook')
            self._dataloader = runner.build_dataloader(
                cfg, seed=runner.seed)
            train_len = len(runner.train_dataloader.dataset)
            if len(self._dataloader.dataset) != train_len:
                raise ValueError(
                    'cluster_dataloader covers '
                    f'{len(self._dataloader.dataset)} images but the train '
                    f'split has {train_len}: both must be the same split')
        return self._dataloader

    def _num_identities(self, runner) -> int:
        """P, the pseudo identities a training batch draws."""
        sampler = runner.train_dataloader.sampler
        if hasattr(sampler, 'batch_size') and hasattr(sampler,
                                                      'num_instances'):
            return int(sampler.batch_size) // int(sampler.num_instances)
        return 1

    # -- hook points --------------------------------------------------------
    def before_train_epoch(self, runner) -> None:
        self._epoch_start = time.perf_counter()
        model = _unwrap(runner.model)
        epoch = runner.epoch
        if int(model.cluster_epoch) == epoch and \
                model.pseudo_labels.numel() > 0:
            # Resumed inside an epoch: keep the clustering it trained on.
            labels = model.pseudo_labels.cpu().numpy()
            self._hand_to_sampler(runner, labels)
            runner.logger.info(
                f'Epoch {epoch + 1}: kept the clustering restored from the '
                f'checkpoint ({int(labels.max()) + 1} clusters)')
            return
        if epoch % self.interval != 0 and model.pseudo_labels.numel() > 0:
            self._hand_to_sampler(runner,
                                  model.pseudo_labels.cpu().numpy())
            return
        self.recluster(runner)

    def after_train_epoch(self, runner) -> None:
        if self._epoch_start is None:
            return
        elapsed = time.perf_counter() - self._epoch_start
        runner.visualizer.add_scalars({'epoch/time': elapsed},
                                      step=runner.epoch + 1)
        runner.logger.info(f'Epoch {runner.epoch + 1} took {elapsed:.1f} s '
                           '(clustering included)')

    def after_train(self, runner) -> None:
        if not self.cluster_after_train:
            return
        loader = self._get_dataloader(runner)
        t0 = time.perf_counter()
        feats = extract_dataset_features(runner.model, loader,
                                         len(loader.dataset))
        t_extract = time.perf_counter() - t0
        t0 = time.perf_counter()
        labels = self._cluster(feats, runner)
        t_cluster = time.perf_counter() - t0
        self._log(runner, labels, int(labels.max()) + 1,
                  int((labels < 0).sum()), t_extract, t_cluster,
                  step=runner.epoch, tag='final',
                  extra=self._impostor_figures(runner, feats, labels))

    def _cameras(self, runner) -> Optional[np.ndarray]:
        """The camera of every train image, for a generator that uses
        them."""
        if not getattr(self.label_generator, 'uses_cameras', False):
            return None
        return _train_cameras(
            runner, f'{self.label_generator.describe()} reads the images\' '
            'cameras', 'set camera_penalty=0')

    def _model_cameras(self, runner) -> dict:
        """``cameras=`` of every train image for a model that needs them
        with its clusters (RCL with ``hps.trust_by='camera'``), else
        nothing."""
        if not getattr(_unwrap(runner.model), 'needs_cameras', False):
            return {}
        return dict(cameras=torch.as_tensor(_train_cameras(
            runner, "RCL's hps trust_by='camera' reads the images' cameras",
            "set hps trust_by='cluster'")))

    def _cluster(self, feats: torch.Tensor, runner) -> np.ndarray:
        """Labels on rank 0, broadcast to every rank.

        With several ranks and a generator that ``shards_knn``, every rank
        searches its share of the kNN lists first
        (the generator's ``search_neighbours``, gathered to every rank)
        and rank 0 clusters with them.
        """
        num = feats.size(0)
        labels = torch.full((num, ), -1, dtype=torch.long)
        generator = self.label_generator
        cameras = self._cameras(runner)
        extra = {}
        if get_dist_info()[1] > 1 and getattr(generator, 'shards_knn',
                                              False):
            extra['neighbours'] = generator.search_neighbours(
                feats.numpy(), cameras=cameras)
        if is_main_process():
            labels_np, info = generator(
                feats.numpy(), return_info=True, cameras=cameras, **extra)
            if info.get('knn_choice'):
                # What knn='auto' chose, and why.
                print_log(f're-clustering kNN: {info["knn_choice"]}',
                          logger='current')
            labels = torch.from_numpy(contiguous_labels(labels_np))
        if get_dist_info()[1] > 1:
            device = 'cuda' if torch.distributed.get_backend() == 'nccl' \
                else 'cpu'
            labels = labels.to(device)
            broadcast(labels, src=0)
            labels = labels.cpu()
        return labels.numpy()

    def recluster(self, runner) -> np.ndarray:
        """Extract, cluster, install; returns the pseudo labels."""
        model = _unwrap(runner.model)
        loader = self._get_dataloader(runner)
        num = len(loader.dataset)
        t0 = time.perf_counter()
        feats = extract_dataset_features(runner.model, loader, num)
        t_extract = time.perf_counter() - t0

        t0 = time.perf_counter()
        labels_np = self._cluster(feats, runner)
        t_cluster = time.perf_counter() - t0

        num_clusters = int(labels_np.max()) + 1 if num else 0
        num_outliers = int((labels_np < 0).sum())
        need = self._num_identities(runner)
        if num_clusters < need:
            raise RuntimeError(
                f'clustering gave {num_clusters} clusters '
                f'({num_outliers} of {num} images are outliers) with '
                f'{self.label_generator.describe()}, but a batch needs '
                f'{need} identities: '
                f'{self.label_generator.explain_few_clusters()}, or lower '
                'the batch\'s number of identities')
        model.set_clusters(feats, torch.from_numpy(labels_np), runner.epoch,
                           **self._model_cameras(runner))
        self._hand_to_sampler(runner, labels_np)
        self._log(runner, labels_np, num_clusters, num_outliers, t_extract,
                  t_cluster,
                  extra=self._impostor_figures(runner, feats, labels_np,
                                               model.head.memory.prototypes))
        return labels_np

    def _hand_to_sampler(self, runner, labels: np.ndarray) -> None:
        sampler = runner.train_dataloader.sampler
        if not hasattr(sampler, 'set_labels'):
            raise TypeError(
                f'the train sampler {type(sampler).__name__} cannot take '
                'pseudo labels: use IdentitySampler')
        sampler.set_labels(labels)

    def _log(self, runner, labels, num_clusters, num_outliers, t_extract,
             t_cluster, step=None, tag=None, extra=None) -> None:
        hub = runner.message_hub
        scalars = dict(
            clusters=num_clusters,
            outliers=num_outliers,
            time_extract=t_extract,
            time_cluster=t_cluster)
        if self.log_quality:
            quality = self._quality(runner, labels)
            scalars.update(quality)
        scalars.update(extra or {})
        if tag is None:
            for key, value in scalars.items():
                hub.update_scalar(f'train/{key}', float(value))
        # The final diagnostic clustering has its own prefix, so that it is
        # never mistaken for the clustering of a next epoch.
        prefix = 'cluster' if tag is None else 'final_cluster'
        record = {f'{prefix}/{k}': float(v) for k, v in scalars.items()}
        record[f'{prefix}/format'] = 2
        runner.visualizer.add_scalars(
            record, step=runner.epoch if step is None else step)
        text = ', '.join(
            f'{k}: {v:.4f}' if isinstance(v, float) else f'{k}: {v}'
            for k, v in scalars.items())
        name = tag or runner.epoch + 1
        print_log(f'Epoch(cluster) [{name}] {text}', logger='current')

    def _true_ids(self, runner, labels) -> Optional[np.ndarray]:
        """The train split's true ids, for diagnostics only; None when
        the data set does not know them."""
        dataset = runner.train_dataloader.dataset
        if not hasattr(dataset, 'get_person_ids'):
            return None
        true_ids = np.asarray(dataset.get_person_ids())
        if true_ids.shape != labels.shape or (true_ids < 0).all():
            return None
        return true_ids

    def _impostor_figures(self, runner, feats, labels,
                          prototypes=None) -> dict:
        """With an aggregator and known true ids: how well its weights
        mark the clusters' impostors and how often each update rule
        would pick one (:func:`~mmreid_rcl.evaluation.functional.
        impostor_report`; logged as ``attention_auc``, ``similarity_auc``,
        ``pick_hps`` ...). Empty otherwise."""
        model = _unwrap(runner.model)
        aggregator = getattr(model, 'aggregator', None)
        if not self.log_quality or aggregator is None or \
                not is_main_process():
            return {}
        true_ids = self._true_ids(runner, labels)
        if true_ids is None:
            return {}
        from mmreid_rcl.evaluation.functional import impostor_report
        k = getattr(runner.train_dataloader.sampler, 'num_instances', 4)
        floor = getattr(model, 'hps_floor', None)
        report = impostor_report(
            aggregator, feats, labels, true_ids,
            0.5 if floor is None else floor, prototypes=prototypes, k=k,
            seed=runner.epoch,
            distrust=float(getattr(model, 'hps_distrust', 0.0)),
            **self._model_cameras(runner))
        return {key: v for key, v in report.items() if v == v}  # not NaN

    def _quality(self, runner, labels) -> dict:
        true_ids = self._true_ids(runner, labels)
        if true_ids is None:
            return {}
        dataset = runner.train_dataloader.dataset
        from mmreid_rcl.clustering.diagnostics import (cluster_quality,
                                                       cross_camera_recall)
        quality = cluster_quality(labels, true_ids)
        result = {
            k: float(quality[k])
            for k in ('purity', 'nmi', 'ari') if k in quality
        }
        if hasattr(dataset, 'get_camera_ids'):
            recall = cross_camera_recall(labels, true_ids,
                                         dataset.get_camera_ids())
            if recall == recall:  # not NaN
                result['cross_camera_recall'] = recall
        return result


def _is_recluster_hook(hook_type) -> bool:
    if isinstance(hook_type, str):
        # 'ReClusterHook' or scoped, 'mmreid_rcl.ReClusterHook'.
        return hook_type.rsplit('.', 1)[-1] == ReClusterHook.__name__
    return isinstance(hook_type, type) and issubclass(hook_type,
                                                      ReClusterHook)


def label_generator_cfg(cfg) -> Optional[dict]:
    """The label generator config of a config's ``ReClusterHook``.

    Args:
        cfg (Config | dict): a full config; its ``custom_hooks`` are read.

    Returns:
        dict, optional: a copy of the hook's ``label_generator`` (the
        hook's default when the entry sets none), None when
        ``custom_hooks`` holds no ReClusterHook.

    Raises:
        ValueError: ``custom_hooks`` holds more than one ReClusterHook, or
            its ``label_generator`` is not a config dict.
    """
    hooks = [
        hook for hook in (cfg.get('custom_hooks') or [])
        if isinstance(hook, dict) and _is_recluster_hook(hook.get('type'))
    ]
    if not hooks:
        return None
    if len(hooks) > 1:
        raise ValueError(f'custom_hooks holds {len(hooks)} ReClusterHook '
                         'entries; expected at most one')
    default = inspect.signature(ReClusterHook).parameters[
        'label_generator'].default
    generator = hooks[0].get('label_generator', default)
    if not isinstance(generator, dict):
        raise ValueError(
            'the ReClusterHook of custom_hooks has a label_generator of '
            f'type {type(generator).__name__}; expected a config dict such '
            "as dict(type='DBSCANLabelGenerator', eps=0.6)")
    return copy.deepcopy(dict(generator))


def build_label_generator(cfg, source: str = 'the config'
                          ) -> BaseLabelGenerator:
    """The label generator of a config's ``ReClusterHook``, built.

    Args:
        cfg (Config | dict): a full config; its ``custom_hooks`` are read.
        source (str): how messages name the config, e.g. its path.

    Returns:
        BaseLabelGenerator: the generator the hook would cluster with.

    Raises:
        ValueError: ``custom_hooks`` holds no ReClusterHook, or more than
            one (see :func:`label_generator_cfg`).
    """
    generator = label_generator_cfg(cfg)
    if generator is None:
        raise ValueError(f'{source} has no ReClusterHook in custom_hooks: '
                         'no label generator to cluster with')
    return LABEL_GENERATORS.build(generator)


def _train_cameras(runner, who: str, remedy: str) -> np.ndarray:
    """The camera of every train image; a clear error naming ``who``
    needs them when the train set has none."""
    dataset = runner.train_dataloader.dataset
    if not hasattr(dataset, 'get_camera_ids'):
        raise ValueError(
            f'{who}, but the train dataset {type(dataset).__name__} has no '
            f'camera ids (get_camera_ids): {remedy}')
    return np.asarray(dataset.get_camera_ids())
