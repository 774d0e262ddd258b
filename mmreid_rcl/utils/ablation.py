"""Ablation protocols: which runs, in which order, and their summaries.

A protocol is a set of variants (one config each) trained over seeds,
optionally after a pre-training stage whose final checkpoint warm-starts
every variant (the semi-supervised protocol: supervised training on the
labelled half of a train split, then unsupervised training on the other
half). ``tools/run_ablation.py`` runs a protocol resumably; this module
holds what it runs and how finished runs are summarised:

- one JSON per finished run (``results_dir/<name>_seed<k>.json``,
  :func:`mmreid_rcl.utils.run_logs.epoch_summary` plus the wall time),
- ``summary.json``, machine-readable (:func:`protocol_summary`),
- a markdown table (:func:`format_report`).
"""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .machine import cpu_description
from .public_run_logs import public_run_summary
from .run_logs import epoch_summary


@dataclass(frozen=True)
class Variant:
    """One trained configuration of a protocol.

    Attributes:
        name (str): Variant name (run files are ``<name>_seed<k>.json``).
        description (str): Its row label in the report.
        config (str): This project's config, relative to the repository
            (``runner='train'``); for ``runner='public'`` a description of
            the recipe.
        runner (str): ``'train'``: ``tools/train.py`` on ``config``;
            ``'public'``: the public cluster-contrast code through
            ``tools/analysis/public_cluster_contrast_cpu.py`` with
            ``public_args`` (needs its checkout, ``--cc-root``).
        public_args (tuple[str]): Arguments for the public training script
            (``--seed`` and ``--logs-dir`` are added per run).
    """
    name: str
    description: str
    config: str
    runner: str = 'train'
    public_args: Tuple[str, ...] = ()

    def __post_init__(self):
        if self.runner not in ('train', 'public'):
            raise ValueError(f'Variant {self.name}: runner must be "train" '
                             f'or "public", got {self.runner!r}')


@dataclass(frozen=True)
class Protocol:
    """What a protocol trains, and where its results go.

    Attributes:
        name (str): Protocol name, e.g. ``'cuhk03_semi'``.
        title (str): Heading of its report.
        variants (tuple[Variant]): Variants, in report order.
        main (tuple[str]): Variants run over the main seeds (first).
        others (tuple[str]): Variants run over the other seeds (after).
        pretrain (Variant, optional): A stage run once (seed 0) before the
            variants; its last checkpoint warm-starts each variant through
            ``pretrain_option`` (a ``--cfg-options`` key).
        pretrain_option (str): Config key set to the pre-trained
            checkpoint.
        needs (tuple[tuple[str, str]]): Files or folders (relative to the
            repository) a run needs, with how to make each.
        work_root (str, optional): Where the runs' work dirs go; None:
            ``work_dirs/ablation/<name>``.
        curves (tuple[str]): Variants whose per-epoch curves the report
            draws (``curves.png``); empty: no picture.
    """
    name: str
    title: str
    variants: Tuple[Variant, ...]
    main: Tuple[str, ...]
    others: Tuple[str, ...] = ()
    pretrain: Optional[Variant] = None
    pretrain_option: str = 'model.init_cfg.checkpoint'
    needs: Tuple[Tuple[str, str], ...] = field(default_factory=tuple)
    work_root: Optional[str] = None
    curves: Tuple[str, ...] = ()

    @property
    def default_work_root(self) -> str:
        return self.work_root or osp.join('work_dirs', 'ablation', self.name)

    @property
    def out_dir(self) -> str:
        """Where summary.json, README.md and runs/ go."""
        return osp.join('docs', 'ablation', self.name)

    def variant(self, name: str) -> Variant:
        for variant in self.variants:
            if variant.name == name:
                return variant
        if self.pretrain is not None and name == self.pretrain.name:
            return self.pretrain
        raise KeyError(f'protocol {self.name} has no variant {name!r}; '
                       f'known: {[v.name for v in self.variants]}')

    def plan(self, main_seeds: Sequence[int], other_seeds: Sequence[int],
             only: Optional[Sequence[str]] = None) -> List[Tuple[str, int]]:
        """Runs in order: the main variants over their seeds (seed-major,
        so that a usable table comes early), then the others."""
        runs = [(n, s) for s in sorted(main_seeds) for n in self.main]
        runs += [(n, s) for s in sorted(other_seeds) for n in self.others]
        return [(n, s) for n, s in runs if not only or n in only]


_IMAGENET_NEEDS = (
    ('checkpoints/mobilenetv2_imagenet_mmreid.pth',
     'python tools/model_converters/mobilenetv2_to_mmreid.py '
     '../shared/weights/mobilenetv2_imagenet.pt '
     'checkpoints/mobilenetv2_imagenet_mmreid.pth'),
    ('data/cuhk03_labeled', 'mkdir -p data && ln -s '
     '../../shared/data/cuhk03_labeled data/cuhk03_labeled'),
)
_ABL = 'configs/rcl/ablation/'
_CC_CPU = 'configs/cluster_contrast/cluster_contrast_mobilenetv2_cpu_cuhk03.py'
_PARITY = 'configs/cluster_contrast/parity/'
# The CPU recipe of _CC_CPU in the public training script's arguments.
PUBLIC_CPU_RECIPE = ('-d', 'cuhk03_labeled', '-a', 'mobilenetv2',
                     '--data-dir', 'data', '--height', '128', '--width', '64',
                     '-b', '64', '--num-instances', '4', '--iters', '100',
                     '--epochs', '12', '--step-size', '8', '--momentum',
                     '0.2', '--eps', '0.6', '--eval-step', '1', '-j', '2')
_SEMI = 'configs/semi/'

PROTOCOLS: Dict[str, Protocol] = {
    'cuhk03_imagenet':
    Protocol(
        name='cuhk03_imagenet',
        title='RCL ablation on CUHK03, ImageNet start (CPU recipe)',
        variants=(
            Variant('baseline', 'mean init + mean update (cluster contrast)',
                    _ABL + 'baseline_mobilenetv2_cpu_cuhk03.py'),
            Variant('csa', '+CSA (attention init, SAA-trained)',
                    _ABL + 'csa_mobilenetv2_cpu_cuhk03.py'),
            Variant('hps', '+HPS (hard positive update, SAA-trained)',
                    _ABL + 'hps_mobilenetv2_cpu_cuhk03.py'),
            Variant('hard', 'hard update (least similar sample)',
                    _ABL + 'hard_mobilenetv2_cpu_cuhk03.py'),
            Variant('rcl', 'full RCL (CSA + SAA + HPS)',
                    _ABL + 'rcl_mobilenetv2_cpu_cuhk03.py'),
            Variant('rcl_floor1', 'full RCL, HPS floor 1/n',
                    _ABL + 'rcl_floor1_mobilenetv2_cpu_cuhk03.py'),
            Variant('central', 'central update (most typical sample)',
                    _ABL + 'central_mobilenetv2_cpu_cuhk03.py'),
            Variant('baseline_k8', 'mean init + mean update, P x K = 8 x 8',
                    _ABL + 'baseline_k8_mobilenetv2_cpu_cuhk03.py'),
            Variant('rcl_k8', 'full RCL, P x K = 8 x 8',
                    _ABL + 'rcl_k8_mobilenetv2_cpu_cuhk03.py'),
            Variant('rcl_warmup4',
                    'full RCL, mean update for 4 epochs, then HPS',
                    _ABL + 'rcl_warmup4_mobilenetv2_cpu_cuhk03.py'),
            Variant('rcl_sink', 'full RCL, sink aggregator (weights against '
                    'the batch\'s mean member score), contrastive + '
                    'consensus set losses, HPS floor 1/n',
                    _ABL + 'rcl_sink_mobilenetv2_cpu_cuhk03.py'),
        ),
        main=('baseline', 'rcl'),
        others=('csa', 'hps', 'hard', 'rcl_floor1', 'central',
                'baseline_k8', 'rcl_k8', 'rcl_warmup4', 'rcl_sink'),
        needs=_IMAGENET_NEEDS,
        work_root='work_dirs/ablation_cuhk03'),
    'cuhk03_semi':
    Protocol(
        name='cuhk03_semi',
        title='CUHK03 semi-supervised: supervised on the labelled half L, '
        'then unsupervised on the unlabelled half U (CPU recipe)',
        variants=(
            Variant('baseline', 'mean update (cluster contrast)',
                    _SEMI + 'cluster_contrast_mobilenetv2_cpu_cuhk03_semi.py'),
            Variant('hard', 'hard update (least similar sample)',
                    _SEMI + 'cluster_contrast_mobilenetv2_cpu_cuhk03_semi_'
                    'hard.py'),
            Variant('rcl', 'full RCL (CSA + SAA + HPS)',
                    _SEMI + 'rcl_mobilenetv2_cpu_cuhk03_semi.py'),
            Variant('csa', '+CSA (attention init, SAA-trained)',
                    _SEMI + 'csa_mobilenetv2_cpu_cuhk03_semi.py'),
            Variant('hps', '+HPS (hard positive update, SAA-trained)',
                    _SEMI + 'hps_mobilenetv2_cpu_cuhk03_semi.py'),
            Variant('camera', 'mean update, camera-aware neighbours '
                    '(camera_penalty 0.1)',
                    _SEMI + 'cluster_contrast_mobilenetv2_cpu_cuhk03_semi_'
                    'camera.py'),
            Variant('camera_hard', 'hard update, camera-aware neighbours',
                    _SEMI + 'cluster_contrast_mobilenetv2_cpu_cuhk03_semi_'
                    'camera_hard.py'),
            Variant('camera_rcl', 'full RCL (similarity aggregator, '
                    'contrastive + consensus set losses), camera-aware '
                    'neighbours',
                    _SEMI + 'rcl_mobilenetv2_cpu_cuhk03_semi_camera.py'),
            Variant('camera_rcl_sink', 'full RCL, sink aggregator (weights '
                    'against the batch\'s mean member score), HPS floor '
                    '1/n, camera-aware neighbours',
                    _SEMI + 'rcl_sink_mobilenetv2_cpu_cuhk03_semi_camera.py'),
            Variant('camera_rcl_sink_floor05', 'full RCL, sink aggregator, '
                    'HPS floor 0.5/n, camera-aware neighbours',
                    _SEMI + 'rcl_sink_floor05_mobilenetv2_cpu_cuhk03_semi_'
                    'camera.py'),
            Variant('camera_rcl_sink_trust', 'full RCL, sink aggregator, '
                    'HPS floor 0.5/n, never the 20 % of images least '
                    'similar to their prototype, camera-aware neighbours',
                    _SEMI + 'rcl_sink_trust_mobilenetv2_cpu_cuhk03_semi_'
                    'camera.py'),
            Variant('camera_rcl_sink_camtrust', 'full RCL, sink aggregator, '
                    'HPS floor 0.5/n, never the 20 % of images least '
                    'similar to their cluster\'s images of their camera, '
                    'camera-aware neighbours',
                    _SEMI + 'rcl_sink_camtrust_mobilenetv2_cpu_cuhk03_semi_'
                    'camera.py'),
            Variant('camera_rcl_sink_camtrust_hard', 'full RCL, sink '
                    'aggregator, HPS the most dispersed member among all '
                    'but the 20 % of images least similar to their '
                    'cluster\'s images of their camera (no floor), '
                    'camera-aware neighbours',
                    _SEMI + 'rcl_sink_camtrust_hard_mobilenetv2_cpu_cuhk03_'
                    'semi_camera.py'),
            Variant('camera_m05', 'cluster contrast, mean update, memory '
                    'momentum 0.5 (not 0.2), camera-aware neighbours',
                    _SEMI + 'cluster_contrast_mobilenetv2_cpu_cuhk03_semi_'
                    'camera_m05.py'),
            Variant('camera_rcl_sink_floor05_m05', 'full RCL, sink '
                    'aggregator, HPS floor 0.5/n, memory momentum 0.5 (not '
                    '0.2), camera-aware neighbours',
                    _SEMI + 'rcl_sink_floor05_m05_mobilenetv2_cpu_cuhk03_'
                    'semi_camera.py'),
            Variant('camera_m01', 'cluster contrast, mean update, memory '
                    'momentum 0.1 (not 0.2), camera-aware neighbours',
                    _SEMI + 'cluster_contrast_mobilenetv2_cpu_cuhk03_semi_'
                    'camera_m01.py'),
            Variant('camera_rcl_sink_floor05_m01', 'full RCL, sink '
                    'aggregator, HPS floor 0.5/n, memory momentum 0.1 (not '
                    '0.2), camera-aware neighbours',
                    _SEMI + 'rcl_sink_floor05_m01_mobilenetv2_cpu_cuhk03_'
                    'semi_camera.py'),
            Variant('camera_rcl_sink_floor05_nodetach', 'full RCL, sink '
                    'aggregator, HPS floor 0.5/n, the set losses training '
                    'the backbone too, camera-aware neighbours',
                    _SEMI + 'rcl_sink_floor05_nodetach_mobilenetv2_cpu_'
                    'cuhk03_semi_camera.py'),
            Variant('camera_csa_sink', '+CSA only (sink aggregator, mean '
                    'update), camera-aware neighbours',
                    _SEMI + 'csa_sink_mobilenetv2_cpu_cuhk03_semi_camera.py'),
            Variant('camera_hps_sink_floor05', '+HPS only (sink aggregator, '
                    'floor 0.5/n, mean init), camera-aware neighbours',
                    _SEMI + 'hps_sink_floor05_mobilenetv2_cpu_cuhk03_semi_'
                    'camera.py'),
        ),
        main=('baseline', 'hard', 'camera', 'camera_hard'),
        curves=('camera', 'camera_hard', 'camera_rcl_sink_floor05'),
        others=('rcl', 'csa', 'hps', 'camera_rcl', 'camera_rcl_sink',
                'camera_rcl_sink_floor05', 'camera_rcl_sink_trust',
                'camera_rcl_sink_camtrust', 'camera_rcl_sink_camtrust_hard',
                'camera_m05', 'camera_rcl_sink_floor05_m05', 'camera_m01',
                'camera_rcl_sink_floor05_m01',
                'camera_rcl_sink_floor05_nodetach', 'camera_csa_sink',
                'camera_hps_sink_floor05'),
        pretrain=Variant(
            'supervised', 'Supervised on L (375 ids, 3,645 images)',
            'configs/supervised/supervised_mobilenetv2_cpu_cuhk03.py'),
        needs=_IMAGENET_NEEDS),
    'cuhk03_parity':
    Protocol(
        name='cuhk03_parity',
        title='Cluster contrast on CUHK03, ImageNet start (CPU recipe): '
        'this project against the public implementation',
        variants=(
            Variant('ours', 'mmreid_rcl (`cluster_contrast_mobilenetv2_cpu_'
                    'cuhk03.py`)', _CC_CPU),
            Variant('public', 'public implementation (same recipe, through '
                    '`public_cluster_contrast_cpu.py`)', _CC_CPU,
                    runner='public', public_args=PUBLIC_CPU_RECIPE),
            Variant('ours_previous', 'ours as before 2026-12-07 (OpenCV '
                    'resize, mean-colour erasing, round-robin instances)',
                    'configs/cluster_contrast/cluster_contrast_mobilenetv2_'
                    'cpu_cuhk03_previous.py'),
            Variant('ours_cv2', 'ours, OpenCV\'s resize (no antialiasing)',
                    _PARITY + 'cc_mobilenetv2_cpu_cuhk03_cv2.py'),
            Variant('ours_mean_erasing', 'ours, random erasing with the '
                    'mean colour and a log-uniform aspect',
                    _PARITY + 'cc_mobilenetv2_cpu_cuhk03_mean_erasing.py'),
            Variant('ours_round_robin', 'ours, instances round-robin over '
                    'the cameras',
                    _PARITY + 'cc_mobilenetv2_cpu_cuhk03_round_robin.py'),
            Variant('rcl_sink', 'full RCL on this recipe (sink aggregator, '
                    'contrastive + consensus set losses, HPS floor 1/n)',
                    'configs/rcl/rcl_sink_mobilenetv2_cpu_cuhk03.py'),
        ),
        main=('ours', 'public'),
        others=('ours_previous', 'ours_cv2', 'ours_mean_erasing',
                'ours_round_robin', 'rcl_sink'),
        needs=_IMAGENET_NEEDS,
        curves=('ours', 'public', 'ours_previous', 'rcl_sink')),
}


def register_protocol(protocol: Protocol) -> Protocol:
    """Add a protocol to :data:`PROTOCOLS` (by its name)."""
    PROTOCOLS[protocol.name] = protocol
    return protocol


def run_file(results_dir: str, name: str, seed: int) -> str:
    return osp.join(results_dir, f'{name}_seed{seed}.json')


def rebuilt_run_file(results_dir: str, name: str, seed: int) -> str:
    """Where a finished run trained again (its work dir lost) is recorded;
    ``load_runs`` does not read it, the recorded run stays the reference."""
    return osp.join(results_dir, f'{name}_seed{seed}.rebuilt.json')


def compare_runs(recorded_path: str, rebuilt_path: str) -> str:
    """One line comparing the final figures of a run and its rebuild."""
    figures = []
    for path in (recorded_path, rebuilt_path):
        with open(path) as f:
            figures.append(final_figures(json.load(f)))
    parts = []
    for key in ('mAP', 'rank1'):
        old, new = figures[0].get(key), figures[1].get(key)
        if old is not None and new is not None:
            parts.append(f'{key} {old:.2f} recorded, {new:.2f} rebuilt '
                         f'({new - old:+.2f})')
    return (f'{osp.basename(rebuilt_path)}: ' +
            ('; '.join(parts) or 'no common figures'))


def load_runs(results_dir: str, name: str) -> List[Tuple[int, dict]]:
    """(seed, summary) of every finished run of a variant, by seed."""
    runs = []
    for path in glob.glob(osp.join(results_dir, f'{name}_seed*.json')):
        seed = osp.splitext(osp.basename(path))[0][len(name) + 5:]
        if not seed.isdigit():  # another variant's prefix (rcl_k8 / rcl)
            continue
        with open(path) as f:
            runs.append((int(seed), json.load(f)))
    return sorted(runs, key=lambda run: run[0])


def final_figures(summary: dict) -> dict:
    """Final mAP / rank-1 / rank-5 (%), final train-split ARI and NMI, the
    mAP of the model the run started from (``start``: its evaluation
    before the first step; runs of one protocol can start from different
    checkpoints, e.g. a pre-training stage rebuilt on another kind of
    CPU) and the ``gain`` over it."""
    last = summary['epochs'][-1] if summary.get('epochs') else {}
    final = summary.get('final_cluster') or {}
    start = (summary.get('initial') or {}).get('mAP')
    gain = None if start is None or last.get('mAP') is None else \
        last['mAP'] - start
    return dict(
        mAP=last.get('mAP'),
        start=start,
        gain=gain,
        rank1=last.get('rank1'),
        rank5=last.get('rank5'),
        ari=final.get('ari'),
        nmi=final.get('nmi'))


def protocol_summary(protocol: Protocol, results_dir: str) -> dict:
    """The machine-readable summary of a protocol's finished runs.

    Returns:
        dict: ``protocol``; ``supervised`` (mAP / rank-1 / rank-5 of the
        pre-training stage after its last epoch, or None); ``first_
        clustering`` (purity and ARI of the first clustering of the
        train split the variants cluster, from the first finished run of
        the first main variant, or None); ``variants``: per variant name a
        list, by seed, of ``seed``, ``mAP``, ``start_mAP`` (the model it
        started from), ``rank1`` (percent), ``ari``
        (final train-split clustering) and the attention diagnostics
        ``attention_auc``, ``similarity_auc`` and ``single_impostor_
        lowest`` of the final clustering (None where not measured).
    """
    supervised = None
    if protocol.pretrain is not None:
        runs = load_runs(results_dir, protocol.pretrain.name)
        if runs:
            fig = final_figures(runs[0][1])
            supervised = {k: fig[k] for k in ('mAP', 'rank1', 'rank5')}
    first = None
    runs = load_runs(results_dir, protocol.main[0])
    if runs and runs[0][1].get('epochs'):
        row = runs[0][1]['epochs'][0]
        first = dict(
            purity=row.get('cluster_purity'),
            ari=row.get('cluster_ari'),
            nmi=row.get('cluster_nmi'),
            clusters=row.get('cluster_clusters'),
            outliers=row.get('cluster_outliers'))
    variants = {}
    for variant in protocol.variants:
        rows = []
        for seed, summary in load_runs(results_dir, variant.name):
            fig = final_figures(summary)
            # The diagnostics of the final clustering (ReClusterHook logs
            # them for models with an aggregator); older runs kept them
            # under 'attention'.
            diag = summary.get('attention') or summary.get(
                'final_cluster') or {}
            rows.append(
                dict(
                    seed=seed,
                    mAP=fig['mAP'],
                    start_mAP=fig['start'],
                    rank1=fig['rank1'],
                    ari=fig['ari'],
                    attention_auc=diag.get('attention_auc'),
                    similarity_auc=diag.get('similarity_auc'),
                    similarity_score_auc=diag.get('similarity_score_auc'),
                    single_impostor_lowest=diag.get(
                        'single_impostor_lowest')))
        if rows:
            variants[variant.name] = rows
    return dict(
        protocol=protocol.name,
        supervised=supervised,
        first_clustering=first,
        variants=variants)


def curve_runs(protocol: Protocol,
               results_dir: str) -> Dict[str, List[Tuple[int, dict]]]:
    """The finished runs of the variants ``protocol.curves`` names, by
    variant name (for :func:`mmreid_rcl.visualization.protocol_curves.
    draw_protocol_curves`)."""
    return {
        name: load_runs(results_dir, name)
        for name in protocol.curves
        if load_runs(results_dir, name)
    }


def _fmt(value, spec):
    return 'n/a' if value is None else format(value, spec)


def _mean_std(values, spec):
    vals = np.array([v for v in values if v is not None], dtype=float)
    if len(vals) == 0:
        return 'n/a'
    if len(vals) == 1:
        return format(vals[0], spec)
    spread = format(vals.std(ddof=1), spec.lstrip('+'))
    return f'{format(vals.mean(), spec)} ± {spread}'


def format_report(protocol: Protocol, results_dir: str) -> str:
    """Markdown: the pre-training stage, then one row per variant (mean
    and sample standard deviation over seeds), then one row per run."""
    lines = []
    if protocol.pretrain is not None:
        runs = load_runs(results_dir, protocol.pretrain.name)
        if runs:
            fig = final_figures(runs[0][1])
            lines += [
                f'{protocol.pretrain.description}: mAP '
                f'{_fmt(fig["mAP"], ".2f")}, rank-1 '
                f'{_fmt(fig["rank1"], ".2f")}, rank-5 '
                f'{_fmt(fig["rank5"], ".2f")}.', ''
            ]
    first = protocol_summary(protocol, results_dir)['first_clustering']
    if first:
        lines += [
            'First clustering of the train split (epoch 1, before any '
            f'unsupervised step): {_fmt(first["clusters"], ".0f")} '
            f'clusters, {_fmt(first["outliers"], ".0f")} outliers, purity '
            f'{_fmt(first["purity"], ".3f")}, ARI {_fmt(first["ari"], ".3f")}'
            '.', ''
        ]
    lines += [
        '| variant | seeds | mAP | gain over start | rank-1 | rank-5 | '
        'final ARI | final NMI |',
        '| --- | --- | --- | --- | --- | --- | --- | --- |'
    ]
    per_run = []
    for variant in protocol.variants:
        runs = load_runs(results_dir, variant.name)
        if not runs:
            continue
        figs = [final_figures(s) for _, s in runs]
        lines.append(
            f'| {variant.description} | {len(figs)} | '
            f'{_mean_std([f["mAP"] for f in figs], ".2f")} | '
            f'{_mean_std([f["gain"] for f in figs], "+.2f")} | '
            f'{_mean_std([f["rank1"] for f in figs], ".2f")} | '
            f'{_mean_std([f["rank5"] for f in figs], ".2f")} | '
            f'{_mean_std([f["ari"] for f in figs], ".3f")} | '
            f'{_mean_std([f["nmi"] for f in figs], ".3f")} |')
        for (seed, _), fig in zip(runs, figs):
            per_run.append(
                f'| {variant.name} | {seed} | {_fmt(fig["mAP"], ".2f")} | '
                f'{_fmt(fig["start"], ".2f")} | '
                f'{_fmt(fig["rank1"], ".2f")} | {_fmt(fig["rank5"], ".2f")}'
                f' | {_fmt(fig["ari"], ".3f")} | {_fmt(fig["nmi"], ".3f")} |')
    if per_run:
        lines += [
            '', 'Per run (start: the mAP of the model the run started '
            'from, evaluated before its first step):', '',
            '| variant | seed | mAP | start | rank-1 | rank-5 | final ARI | '
            'final NMI |',
            '| --- | --- | --- | --- | --- | --- | --- | --- |', *per_run
        ]
    diagnostics = _diagnostic_rows(protocol, results_dir)
    if diagnostics:
        lines += [
            '', 'Impostor diagnostics of the final clustering (models with '
            'an aggregator; sets of K members; see impostor_report):', '',
            '| variant | seed | ' + ' | '.join(_DIAGNOSTICS) + ' |',
            '|' + ' --- |' * (len(_DIAGNOSTICS) + 2), *diagnostics
        ]
    lines += [
        '', '(mean ± sample standard deviation over seeds; metrics after '
        'the last epoch; ARI/NMI of the clustering of the train split by '
        'the final model.)'
    ]
    return '\n'.join(lines)


# Figures of impostor_report shown per run where a run logged them.
_DIAGNOSTICS = ('attention_auc', 'similarity_auc', 'similarity_score_auc',
                'single_impostor_lowest',
                'similarity_single_impostor_lowest', 'pick_hps', 'pick_hard',
                'pick_any', 'pick_central')


def _diagnostic_rows(protocol: Protocol, results_dir: str) -> List[str]:
    rows = []
    for variant in protocol.variants:
        for seed, summary in load_runs(results_dir, variant.name):
            final = summary.get('final_cluster') or {}
            if 'attention_auc' not in final:
                continue
            cells = [_fmt(final.get(key), '.3f') for key in _DIAGNOSTICS]
            rows.append(f'| {variant.name} | {seed} | ' + ' | '.join(cells) +
                        ' |')
    return rows


def write_outputs(protocol: Protocol, results_dir: str, out_dir: str,
                  command: str) -> str:
    """Write ``out_dir/summary.json`` and ``out_dir/README.md``; returns
    the markdown report."""
    text = format_report(protocol, results_dir)
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'summary.json'), 'w') as f:
        json.dump(protocol_summary(protocol, results_dir), f, indent=1)
        f.write('\n')
    with open(osp.join(out_dir, 'README.md'), 'w') as f:
        f.write(f'# {protocol.title}\n\nWritten by `{command}`.\n\n' + text +
                '\n')
    return text


def train_command(repo: str, config: str, work_dir: str, seed: int,
                  options: Sequence[str]) -> List[str]:
    """The ``tools/train.py`` command of one run; resumes a started one."""
    cmd = [
        sys.executable,
        osp.join(repo, 'tools', 'train.py'),
        osp.join(repo, config), '--work-dir', work_dir, '--cfg-options',
        f'randomness.seed={seed}', *options
    ]
    if glob.glob(osp.join(work_dir, '*.pth')):
        cmd.insert(3, '--resume')
    return cmd


def public_command(repo: str, cc_root: Optional[str], variant: Variant,
                   work_dir: str, seed: int) -> List[str]:
    """The command of one run of the public code (it cannot resume: a
    started run starts again; its log marks where)."""
    if not cc_root:
        raise ValueError(f'variant {variant.name} runs the public '
                         'cluster-contrast code: pass --cc-root, a checkout '
                         'of alibaba/cluster-contrast-reid')
    script = osp.join(cc_root, 'examples', 'cluster_contrast_train_usl.py')
    if not osp.isfile(script):
        raise ValueError(f'--cc-root {cc_root}: no {script}; expected a '
                         'checkout of alibaba/cluster-contrast-reid')
    return [
        sys.executable,
        osp.join(repo, 'tools', 'analysis', 'public_cluster_contrast_cpu.py'),
        '--cc-root', osp.abspath(cc_root), '--eval-before', '--',
        *variant.public_args, '--seed', str(seed), '--logs-dir', work_dir
    ]


def run_command(repo: str, variant: Variant, work_dir: str, seed: int,
                options: Sequence[str],
                cc_root: Optional[str] = None) -> List[str]:
    """The command of one run of ``variant`` (see :class:`Variant`);
    ``options`` (``--cfg-options``) apply to this project's runs only."""
    if variant.runner == 'public':
        return public_command(repo, cc_root, variant, work_dir, seed)
    return train_command(repo, variant.config, work_dir, seed, options)


def run_summary(variant: Variant, work_dir: str) -> dict:
    """The per-epoch summary of a finished run: from the scalar logs
    (this project) or the console log (the public code)."""
    if variant.runner == 'public':
        log = osp.join(work_dir, 'train.out')
        if not osp.isfile(log):
            raise FileNotFoundError(f'{log} does not exist')
        with open(log) as f:
            return public_run_summary(f.read())
    return epoch_summary(work_dir)


def finish_run(work_dir: str, results_path: str, wall_time_s: float,
               variant: Optional[Variant] = None) -> dict:
    """Summarise a finished run into ``results_path``, with the CPU it
    ran on (float results differ between kinds of CPU)."""
    summary = epoch_summary(work_dir) if variant is None else \
        run_summary(variant, work_dir)
    summary['wall_time_s'] = wall_time_s
    summary['machine'] = cpu_description()
    os.makedirs(osp.dirname(results_path) or '.', exist_ok=True)
    with open(results_path, 'w') as f:
        json.dump(summary, f, indent=1)
    return summary


def start_run(cmd: List[str], work_dir: str, repo: str,
              env: Optional[dict] = None) -> subprocess.Popen:
    """Start a training command, its output appended to train.out."""
    os.makedirs(work_dir, exist_ok=True)
    log = open(osp.join(work_dir, 'train.out'), 'a')
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, cwd=repo, env=env)
    proc.log_file = log
    proc.started = time.time()
    return proc
