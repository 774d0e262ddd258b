"""Benchmark the re-ID evaluation functions on Market-1501-sized data.

Seeded synthetic features imitate a Market-1501 test split: 3,368 queries
and 15,913 gallery images, 2048-d, 751 identities with about 17.5 gallery
images each, six cameras, and 2,793 distractor images (a few ids never
queried, each image looking unlike any other). An image is its identity's
centre (identities come in families of look-alikes) plus a shift of its
camera (shared by all identities, so that images of one camera look alike)
plus noise of a per-image scale (some images are hard). With the defaults
mAP is about 78%, rank-1 91% and mINP 39%, like a good model on
Market-1501.

Timed: the distance matrix (once), :func:`evaluate_rank` (best of
``--repeat``) and, for comparison, the established public way of computing
the same numbers (a full ``np.argsort`` of the matrix, then a Python loop
over the queries), then k-reciprocal re-ranking with its extra query-query
and gallery-gallery distances, at the same scale unless ``--rerank-scale``
shrinks it. The reference's ``np.argsort`` orders exact ties in distance
arbitrarily where evaluate_rank breaks them by gallery index, so the two
may differ by such ties (~1e-6); with ``--stable-reference`` they agree
exactly.

Examples::

    python tools/benchmarks/bench_evaluation.py            # Market-1501 size
    python tools/benchmarks/bench_evaluation.py --quick    # a few seconds
    python tools/benchmarks/bench_evaluation.py --rerank-scale 0.25
    python tools/benchmarks/bench_evaluation.py --json evaluation.json

``--json OUT`` writes rows ``{stage, figure, comparison, target, met}``
(what ``tools/benchmarks/run_all.py`` tabulates).
"""
import argparse
import json
import time
from typing import Callable, Dict, Tuple

import numpy as np
import torch

from mmreid_rcl.evaluation.functional import (compute_distance, evaluate_rank,
                                              re_ranking)

NUM_CAMERAS = 6
NOISE = 2.2
LOOK_ALIKE = 0.5
HARD_SPREAD = 0.15
# evaluate_rank must give the reference's metrics up to float rounding
# (the reference's argsort may also order exact ties differently).
AGREEMENT = 1e-6


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--num-query', type=int, default=3368)
    parser.add_argument('--num-gallery', type=int, default=15913)
    parser.add_argument('--num-ids', type=int, default=751)
    parser.add_argument(
        '--num-distractors',
        type=int,
        default=2793,
        help='gallery images of ids that are never queried')
    parser.add_argument('--dim', type=int, default=2048)
    parser.add_argument(
        '--noise',
        type=float,
        default=NOISE,
        help='typical per-image noise relative to the identity centres')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument(
        '--stable-reference',
        action='store_true',
        help='sort ties in the reference as evaluate_rank does (slower)')
    parser.add_argument(
        '--quick',
        action='store_true',
        help='a small problem (300 queries, 1,500 gallery, 256-d)')
    parser.add_argument(
        '--rerank-scale',
        type=float,
        default=1.0,
        help='share of queries and gallery images to re-rank (0 to skip)')
    parser.add_argument('--json', help='write the result rows here')
    args = parser.parse_args(argv)
    if args.quick:
        args.num_query, args.num_gallery, args.num_ids = 300, 1500, 100
        args.num_distractors, args.dim = 250, 256
        if args.noise == NOISE:  # same difficulty at the lower dim
            args.noise = 1.3
    return args


def make_split(num_query: int,
               num_gallery: int,
               num_ids: int,
               num_distractors: int,
               dim: int,
               seed: int,
               noise: float = NOISE) -> Dict[str, np.ndarray]:
    """Seeded query and gallery features, ids and cameras.

    Returns:
        dict: ``q_feats`` (Q, dim), ``g_feats`` (G, dim) float32 and
        ``q_pids``, ``g_pids``, ``q_camids``, ``g_camids``.
    """
    rng = np.random.default_rng(seed)
    # Identities come in families of look-alikes (similar clothes), which
    # makes the wrong identity win rank-1 now and then.
    families = rng.standard_normal((num_ids // 4 + 1, dim), dtype=np.float32)
    centres = (np.sqrt(LOOK_ALIKE) * families[np.arange(num_ids) // 4] +
               np.sqrt(1 - LOOK_ALIKE) *
               rng.standard_normal((num_ids, dim), dtype=np.float32))
    # Shared by every identity: a camera's images resemble each other.
    camera_shift = 0.6 * rng.standard_normal((NUM_CAMERAS, dim),
                                             dtype=np.float32)

    num_regular = num_gallery - num_distractors
    g_pids = np.concatenate([
        np.arange(num_regular) % num_ids,
        # A few distractor ids; their images have no identity centre.
        num_ids + rng.integers(0, 4, num_distractors)
    ])
    g_camids = rng.integers(0, NUM_CAMERAS, num_gallery)
    q_pids = rng.permutation(np.arange(num_query) % num_ids)
    q_camids = rng.integers(0, NUM_CAMERAS, num_query)

    def images(pids: np.ndarray, camids: np.ndarray) -> np.ndarray:
        feats = np.empty((len(pids), dim), dtype=np.float32)
        for start in range(0, len(pids), 4096):
            pid = pids[start:start + 4096]
            base = centres[np.minimum(pid, num_ids - 1)]
            distractor = pid >= num_ids
            # Distractors have no identity centre: each is its own look.
            base[distractor] = rng.standard_normal(
                (int(distractor.sum()), dim), dtype=np.float32)
            # Per-image difficulty: most images are fair, some are hard.
            scale = noise * rng.lognormal(0, HARD_SPREAD, (len(pid), 1))
            jitter = rng.standard_normal((len(pid), dim), dtype=np.float32)
            feats[start:start + 4096] = (
                base + camera_shift[camids[start:start + 4096]] +
                scale.astype(np.float32) * jitter)
        return feats

    return dict(
        q_feats=images(q_pids, q_camids),
        g_feats=images(g_pids, g_camids),
        q_pids=q_pids,
        g_pids=g_pids,
        q_camids=q_camids,
        g_camids=g_camids)


def reference_evaluate(distmat: np.ndarray,
                       q_pids: np.ndarray,
                       g_pids: np.ndarray,
                       q_camids: np.ndarray,
                       g_camids: np.ndarray,
                       max_rank: int = 50,
                       stable: bool = False) -> Tuple[float, np.ndarray,
                                                      float]:
    """The established public way: sort every row, loop over the queries.

    Its default ``np.argsort`` orders ties in distance arbitrarily, so it
    can differ from :func:`evaluate_rank` (ties by gallery index) by such
    ties only; ``stable=True`` sorts as evaluate_rank does, more slowly.

    Returns:
        tuple: ``(mAP, cmc, mINP)`` as fractions.
    """
    order = np.argsort(distmat, axis=1, kind='stable' if stable else None)
    hits = g_pids[order] == q_pids[:, None]
    all_ap, all_cmc, all_inp = [], [], []
    for i in range(len(q_pids)):
        row = order[i]
        ignored = (g_pids[row] == q_pids[i]) & (g_camids[row] == q_camids[i])
        raw = hits[i][~ignored]
        if not raw.any():
            continue
        cum = raw.cumsum()
        last = np.flatnonzero(raw)[-1]
        all_inp.append(cum[last] / (last + 1.0))
        all_cmc.append(np.minimum(cum[:max_rank], 1))
        precision = cum / (np.arange(len(raw)) + 1.0)
        all_ap.append((precision * raw).sum() / raw.sum())
    return (float(np.mean(all_ap)), np.mean(all_cmc, axis=0),
            float(np.mean(all_inp)))


def timed(fn: Callable, repeat: int = 1):
    """Best wall time of ``repeat`` runs and the last result."""
    best = float('inf')
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def summary(mAP: float, cmc: np.ndarray, mINP: float) -> str:
    return (f'mAP {100 * mAP:.2f}  rank-1 {100 * cmc[0]:.2f}  '
            f'rank-5 {100 * cmc[4]:.2f}  mINP {100 * mINP:.2f}')


def _sec(t: float) -> str:
    return f'{1000 * t:.0f} ms' if t < 1 else f'{t:.2f} s'


def rows_of(res: dict) -> list:
    """Table rows ``{stage, figure, comparison, target, met}``."""
    stage = 'evaluation'
    size = f'{res["num_query"]:,} x {res["num_gallery"]:,}, {res["dim"]}-d'
    diff = max(res['diff_map'], res['diff_cmc'], res['diff_minp'])
    rows = [
        dict(
            stage=stage,
            figure=f'evaluate_rank {_sec(res["evaluate_rank"])} (mAP, CMC, '
            f'mINP; {size}; best of {res["repeat"]})',
            comparison=f'reference (full argsort + per-query loop) '
            f'{_sec(res["reference"])}: x{res["speedup"]:.0f}; largest '
            f'metric difference {diff:.1e}; distances '
            f'{_sec(res["compute_distance"])}',
            target=f'faster than the reference, metrics within '
            f'{AGREEMENT:.0e}',
            met=bool(res['speedup'] > 1 and diff <= AGREEMENT))
    ]
    if 're_ranking' in res:
        rows.append(
            dict(
                stage=stage,
                figure=f're-ranking {_sec(res["re_ranking"])} '
                f'({res["rerank_query"]:,} x {res["rerank_gallery"]:,}, '
                'k1=20, k2=6, lambda=0.3)',
                comparison=f'+{_sec(res["rerank_distances"])} for the '
                f'query-query and gallery-gallery distances; mAP '
                f'{100 * res["map_before"]:.1f} -> '
                f'{100 * res["map_after"]:.1f}',
                target='',
                met=None))
    return rows


def main(argv=None) -> None:
    args = parse_args(argv)
    print(f'torch threads: {torch.get_num_threads()}')
    data = make_split(args.num_query, args.num_gallery, args.num_ids,
                      args.num_distractors, args.dim, args.seed, args.noise)
    ids = (data['q_pids'], data['g_pids'], data['q_camids'],
           data['g_camids'])
    print(f'{args.num_query} queries x {args.num_gallery} gallery, '
          f'{args.dim}-d, {args.num_ids} ids, {args.num_distractors} '
          'distractor images, seed', args.seed)

    t_dist, distmat = timed(
        lambda: compute_distance(data['q_feats'], data['g_feats']))
    line = '{:<36}{:>9.3f} s'
    print(line.format('compute_distance', t_dist))

    t_ours, ours = timed(lambda: evaluate_rank(distmat, *ids), args.repeat)
    print(line.format(f'evaluate_rank (best of {args.repeat})', t_ours))
    t_ref, (ref_map, ref_cmc, ref_minp) = timed(
        lambda: reference_evaluate(
            distmat, *ids, stable=args.stable_reference))
    kind = 'stable argsort' if args.stable_reference else 'argsort'
    print(line.format(f'reference ({kind} + loop)', t_ref))
    print('{:<36}{:>9.1f} x'.format('speed-up', t_ref / t_ours))
    print(f'max abs difference (fractions)      mAP '
          f'{abs(ours["mAP"] - ref_map):.1e}, CMC '
          f'{np.abs(ours["cmc"] - ref_cmc).max():.1e}, mINP '
          f'{abs(ours["mINP"] - ref_minp):.1e}')
    print('metrics:', summary(ours['mAP'], ours['cmc'], ours['mINP']),
          f'({ours["num_invalid_queries"]} invalid queries)')
    res = dict(
        num_query=args.num_query,
        num_gallery=args.num_gallery,
        dim=args.dim,
        repeat=args.repeat,
        compute_distance=t_dist,
        evaluate_rank=t_ours,
        reference=t_ref,
        speedup=t_ref / t_ours,
        diff_map=abs(ours['mAP'] - ref_map),
        diff_cmc=float(np.abs(ours['cmc'] - ref_cmc).max()),
        diff_minp=abs(ours['mINP'] - ref_minp))

    if args.rerank_scale > 0:
        res.update(rerank(args, data, distmat))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows_of(res), f, indent=2)


def rerank(args, data: Dict[str, np.ndarray], distmat: np.ndarray) -> dict:
    """Time re-ranking of a share of the split; returns the figures."""
    line = '{:<36}{:>9.3f} s'
    num_q = max(1, round(args.rerank_scale * args.num_query))
    num_g = max(1, round(args.rerank_scale * args.num_gallery))
    # An even spread over the split keeps its id and camera mix.
    q_idx = np.linspace(0, args.num_query - 1, num_q).round().astype(int)
    g_idx = np.linspace(0, args.num_gallery - 1, num_g).round().astype(int)
    query, gallery = data['q_feats'][q_idx], data['g_feats'][g_idx]
    sub_ids = (data['q_pids'][q_idx], data['g_pids'][g_idx],
               data['q_camids'][q_idx], data['g_camids'][g_idx])
    print(f'\nre-ranking at {num_q} queries x {num_g} gallery '
          '(k1=20, k2=6, lambda=0.3)')
    t_extra, (q_g, q_q, g_g) = timed(lambda: (
        distmat[np.ix_(q_idx, g_idx)], compute_distance(query, query),
        compute_distance(gallery, gallery)))
    print(line.format('query-query + gallery-gallery dist', t_extra))
    t_rerank, reranked = timed(lambda: re_ranking(q_g, q_q, g_g))
    print(line.format('re_ranking', t_rerank))
    before = evaluate_rank(q_g, *sub_ids)
    after = evaluate_rank(reranked, *sub_ids)
    print('before:', summary(before['mAP'], before['cmc'], before['mINP']))
    print('after: ', summary(after['mAP'], after['cmc'], after['mINP']))
    return dict(
        rerank_query=num_q,
        rerank_gallery=num_g,
        rerank_distances=t_extra,
        re_ranking=t_rerank,
        map_before=before['mAP'],
        map_after=after['mAP'])


if __name__ == '__main__':
    main()
