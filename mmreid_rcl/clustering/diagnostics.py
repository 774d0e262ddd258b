"""Quality of pseudo labels against true identities (diagnostics only)."""
import copy
import time
from typing import List, Sequence

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

from mmreid_rcl.registry import LABEL_GENERATORS
from .jaccard_distance import as_unit_features


def _purity(labels: np.ndarray, true_ids: np.ndarray) -> float:
    """Share of samples carrying the majority true id of their cluster."""
    table = contingency_matrix(labels, true_ids, sparse=True).tocsr()
    return float(table.max(axis=1).sum() / len(labels))


def _pairs(counts: np.ndarray) -> float:
    return float((counts * (counts - 1) // 2).sum())


def cross_camera_recall(pseudo_labels, true_ids, camera_ids) -> float:
    """Share of a person's cross-camera image pairs put in one cluster.

    Among the pairs of clustered images (label >= 0) that show the same
    person in two different cameras, the share that share a pseudo label.
    Clusters can be pure and still split every person by camera: then this
    is 0, and contrastive training pushes the views of one person in two
    cameras apart, which cross-camera retrieval punishes. NaN when there is
    no such pair.

    Args:
        pseudo_labels (array-like): int labels (N,), -1 for outliers.
        true_ids (array-like): true identity of each sample (N,).
        camera_ids (array-like): camera of each sample (N,).

    Returns:
        float: The recall in [0, 1], or NaN.
    """
    labels = np.asarray(pseudo_labels).astype(np.int64, copy=False)
    true_ids, cams = np.asarray(true_ids), np.asarray(camera_ids)
    if not labels.shape == true_ids.shape == cams.shape or labels.ndim != 1:
        raise ValueError('pseudo_labels, true_ids and camera_ids must be '
                         '1-D of the same length, got shapes '
                         f'{labels.shape}, {true_ids.shape}, {cams.shape}')
    keep = labels >= 0
    labels, true_ids, cams = labels[keep], true_ids[keep], cams[keep]

    def cross_pairs(*keys):
        # Same-key pairs minus those also in the same camera.
        _, group = np.unique(np.stack(keys), axis=1, return_inverse=True)
        _, group_cam = np.unique(
            np.stack([*keys, cams]), axis=1, return_inverse=True)
        return (_pairs(np.bincount(group.ravel())) -
                _pairs(np.bincount(group_cam.ravel())))

    total = cross_pairs(true_ids)
    if total == 0:
        return float('nan')
    return cross_pairs(true_ids, labels) / total


def cluster_quality(pseudo_labels, true_ids) -> dict:
    """Compare pseudo labels with the true identities.

    Outliers (label -1) are left out of ``purity``, ``nmi`` and ``ari``,
    which score how the clustered samples were grouped; how many samples
    were left out is ``num_outliers``. ``ari_all`` scores every sample,
    each outlier counted as a cluster of its own, so discarding many
    samples lowers it. With no clustered sample the first three are 0.

    Args:
        pseudo_labels (array-like): int labels (N,), -1 for outliers.
        true_ids (array-like): true identity of each sample (N,).

    Returns:
        dict: ``num_clusters``, ``num_outliers`` (int), ``purity``, ``nmi``,
        ``ari``, ``ari_all`` (float).
    """
    labels = np.asarray(pseudo_labels).astype(np.int64, copy=False)
    true_ids = np.asarray(true_ids)
    if labels.ndim != 1 or labels.shape != true_ids.shape:
        raise ValueError(
            'pseudo_labels and true_ids must be 1-D of the same length, got '
            f'shapes {labels.shape} and {true_ids.shape}')
    clustered = labels >= 0
    num_clusters = len(np.unique(labels[clustered]))
    result = dict(
        num_clusters=int(num_clusters),
        num_outliers=int((~clustered).sum()),
        purity=0.0,
        nmi=0.0,
        ari=0.0)
    if clustered.any():
        lab, ids = labels[clustered], true_ids[clustered]
        result.update(
            purity=_purity(lab, ids),
            nmi=float(normalized_mutual_info_score(ids, lab)),
            ari=float(adjusted_rand_score(ids, lab)))
    # Outliers as singletons: fresh labels above every cluster label.
    singletons = labels.copy()
    singletons[~clustered] = labels.max(initial=-1) + 1 + np.arange(
        (~clustered).sum())
    result['ari_all'] = float(adjusted_rand_score(true_ids, singletons))
    return result


# Figures of cluster_quality a sweep can be judged by: higher is better.
SWEEP_CRITERIA = ('ari_all', 'ari', 'nmi', 'purity')


def build_sweep_generators(generator_cfg: dict,
                           values: Sequence,
                           key: str = 'eps') -> list:
    """One label generator per value of the setting ``key``.

    Args:
        generator_cfg (dict): label generator config with a ``type``; its
            own ``key`` is replaced.
        values (Sequence): the values of ``key``.
        key (str): the generator setting to vary. Defaults to ``'eps'``.

    Returns:
        list: the generators, in the order of ``values``.

    Raises:
        ValueError: no value, a config without ``type``, or a value the
            generator refuses (the message names the value).
    """
    values = list(values)
    if not values:
        raise ValueError(f'no value of {key!r} to sweep')
    if not isinstance(generator_cfg, dict) or 'type' not in generator_cfg:
        raise ValueError('generator_cfg must be a label generator config '
                         f'dict with a "type", got {generator_cfg!r}')
    generators = []
    for value in values:
        cfg = copy.deepcopy(dict(generator_cfg))
        cfg[key] = value
        try:
            generators.append(LABEL_GENERATORS.build(cfg))
        except (TypeError, ValueError) as e:
            raise ValueError(f'{generator_cfg["type"]} with {key}={value!r}: '
                             f'{e}') from e
    return generators


def sweep_label_generator(features,
                          true_ids,
                          generator_cfg: dict,
                          values: Sequence,
                          key: str = 'eps',
                          cameras=None) -> List[dict]:
    """Cluster the same features once per value of one generator setting.

    For each value, the label generator of ``generator_cfg`` is built from
    the registry with ``key`` set to that value and clusters ``features``;
    its labels are compared with ``true_ids`` by :func:`cluster_quality`.
    Every generator is built before any clustering, so that a value the
    generator refuses fails at once. The features are normalised once; the
    clustering itself is run again for each value (the k-reciprocal
    distance of the DBSCAN generator is truncated at its ``eps``, so it
    cannot be shared between values through the generator's interface; a
    few thousand features take about a second each).

    Args:
        features (np.ndarray | torch.Tensor): features (N, D).
        true_ids (array-like): true identity of each row (N,).
        generator_cfg (dict): label generator config, e.g.
            ``dict(type='DBSCANLabelGenerator', eps=0.6, min_samples=4)``;
            its own ``key`` is replaced.
        values (Sequence): the values of ``key`` to try, in table order.
        key (str): the generator setting to vary. Defaults to ``'eps'``.
        cameras (array-like, optional): camera of each row (N,), passed to
            a generator that reads cameras (``camera_penalty``) and used
            for the ``cross_camera_recall`` column.

    Returns:
        list[dict]: one row per value: ``key`` (the value),
        ``num_clusters``, ``num_outliers``, ``purity``, ``nmi``, ``ari``,
        ``ari_all`` (see :func:`cluster_quality`), with ``cameras`` also
        ``cross_camera_recall`` (:func:`cross_camera_recall`), and
        ``time`` (seconds of clustering).

    Raises:
        ValueError: no value, ``true_ids`` or ``cameras`` not one per row,
            a config without ``type``, or a value the generator refuses.
    """
    values = list(values)
    generators = build_sweep_generators(generator_cfg, values, key)
    x = as_unit_features(features)
    true_ids = np.asarray(true_ids)
    if true_ids.shape != (x.shape[0], ):
        raise ValueError(f'true_ids must hold one id per feature row: '
                         f'{x.shape[0]} rows, got shape {true_ids.shape}')
    if cameras is not None:
        cameras = np.asarray(cameras)
        if cameras.shape != true_ids.shape:
            raise ValueError(f'cameras must hold one camera per feature '
                             f'row: {x.shape[0]} rows, got shape '
                             f'{cameras.shape}')
    rows = []
    for value, generator in zip(values, generators):
        start = time.perf_counter()
        labels = generator(x, cameras=cameras)
        row = {key: value}
        row.update(cluster_quality(labels, true_ids))
        if cameras is not None:
            row['cross_camera_recall'] = cross_camera_recall(
                labels, true_ids, cameras)
        row['time'] = time.perf_counter() - start
        rows.append(row)
    return rows


def best_sweep_row(rows: Sequence[dict],
                   criterion: str = 'ari_all',
                   key: str = 'eps',
                   tolerance: float = 1e-12) -> dict:
    """The row of a sweep that scores best by ``criterion``.

    Rows within ``tolerance`` of the best score tie; of those, the one of
    the smallest ``key`` value wins (for DBSCAN's eps: the tighter
    clustering, which merges fewer identities).

    Args:
        rows (Sequence[dict]): rows of :func:`sweep_label_generator`.
        criterion (str): one of :data:`SWEEP_CRITERIA` (higher is better).
            Defaults to ``'ari_all'``: agreement over all samples, each
            outlier a cluster of its own, so that neither merging
            identities nor discarding samples pays.
        key (str): the swept setting. Defaults to ``'eps'``.
        tolerance (float): scores this close to the best tie. Defaults to
            1e-12.

    Returns:
        dict: the chosen row.

    Raises:
        ValueError: no row, or an unknown criterion.
    """
    if criterion not in SWEEP_CRITERIA:
        raise ValueError(f'criterion must be one of {SWEEP_CRITERIA}, got '
                         f'{criterion!r}')
    rows = list(rows)
    if not rows:
        raise ValueError('no sweep row to choose from')
    best = max(row[criterion] for row in rows)
    tied = [row for row in rows if row[criterion] >= best - tolerance]
    return min(tied, key=lambda row: row[key])
