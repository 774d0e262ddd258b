"""Which sample would each memory-update rule pick, and is it mislabelled?

    python tools/analysis/hps_diagnostics.py CONFIG CHECKPOINT [--k 4] \\
        [--json out.json] [--save-features f.npz] [--overwrite]

Loads a trained RCL (or any model with a ``ClusterAttentionAggregator``),
extracts the train split's features, clusters them with the config's label
generator (or takes ``--use-saved-labels``: the pseudo labels stored in the
checkpoint), then draws many sets of K members per cluster, as the identity
sampler does in training, and runs the aggregator on them. A member is an
*impostor* when its true identity is not the most common true identity of
its cluster (true ids are read for this diagnostic only).

It prints, per rule, how often the sample that would update the prototype
is an impostor:

- ``any member``: every sample moves the prototype (the ``mean`` update),
  i.e. the share of impostors among the drawn members;
- ``hard``: the member least similar to its prototype;
- ``HPS``: the member of largest dispersion among those whose attention
  weight is not below the floor (``hps_floor / K``) and, with RCL's
  ``hps.distrust``, that the clustering trusts;
- ``most attended``: the member of largest attention weight;
- ``central``: the member of largest mean cosine similarity to the other
  members of its set (the ``CentralMemoryUpdate`` rule, which needs no
  attention).

and how well the attention weight separates impostors from genuine members
(ROC AUC; 0.5 means it does not see them), with the weights' spread (the
share of members below the floor, and the mean normalised entropy of a
set's weights, 1 for uniform weights). The figures show whether the
attention has learnt to mark mislabelled samples, which HPS relies on.
Beside the AUC over all members it gives the AUC within sets (only
members of one set compared) and, over the sets with exactly one
impostor, how often the impostor weighs least; the same for two
similarity-only references: received attention of a softmax over the
other members, and a softmax of each member's mean similarity to the
others (what an untrained ``SimilarityAttentionAggregator`` gives). The
numerics are in ``mmreid_rcl/evaluation/functional/impostor_diagnostics.py``.

It also prints the SAA loss of the drawn sets (their aggregates against the
memory) for the trained aggregate, the trained weights applied to the
members' own (unrefined) features, the plain mean of the members and the
reference-weighted mean: whether training taught the aggregator anything a
mean does not already do, and whether the weights or the residual
refinement make the difference.
"""
import argparse
import json
import os.path as osp

import numpy as np
import torch

# The numerics live in the package; the names stay importable from here.
from mmreid_rcl.evaluation.functional import (distrust_report, draw_sets,
                                              impostor_auc, impostor_flags,
                                              mean_mutual_similarity,
                                              mutual_similarity_weights,
                                              normalised_entropy,
                                              other_camera_flags, pick_rates,
                                              roc_auc, set_loss,
                                              similarity_weights,
                                              single_impostor_lowest,
                                              within_set_auc)

__all__ = [
    'draw_sets', 'impostor_auc', 'impostor_flags', 'mean_mutual_similarity',
    'mutual_similarity_weights', 'normalised_entropy', 'pick_rates',
    'roc_auc', 'set_loss', 'similarity_weights', 'single_impostor_lowest',
    'within_set_auc', 'main'
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--k', type=int, default=4,
                        help='members per set (the sampler\'s K)')
    parser.add_argument('--sets-per-cluster', type=int, default=20)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--use-saved-labels', action='store_true',
        help='take the pseudo labels stored in the checkpoint instead of '
        'clustering the features again')
    parser.add_argument('--json', help='also write the figures here')
    parser.add_argument(
        '--distrust', type=float,
        help='the share of the clustered images for the distrust report '
        '(what RCL\'s hps.distrust takes from HPS, by prototype and per '
        'camera); default: the model\'s hps.distrust, or 0.2')
    parser.add_argument(
        '--reference-temperature', type=float, default=0.1,
        help='temperature of the similarity-only reference weights')
    parser.add_argument(
        '--features', help='an .npz written by --save-features: skip the '
        'extraction')
    parser.add_argument(
        '--save-features', help='write the features, pseudo labels and '
        'true ids to this .npz')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace existing --json / --save-features files')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmengine.config import Config

    from mmreid_rcl.apis.dataset_features import (build_cluster_dataloader,
                                                  extract_dataset_features)
    from mmreid_rcl.clustering import contiguous_labels
    from mmreid_rcl.engine.hooks import build_label_generator
    from mmreid_rcl.engine.runner.state_dict_check import (
        CheckpointMismatchError, load_checkpoint_checked)
    from mmreid_rcl.registry import MODELS
    from mmreid_rcl.utils import register_all_modules
    from mmreid_rcl.utils.output_files import check_outputs

    register_all_modules()
    for path in (args.config, args.checkpoint):
        if not osp.isfile(path):
            raise SystemExit(f'{path} does not exist')
    try:
        check_outputs([p for p in (args.json, args.save_features) if p],
                      args.overwrite)
    except OSError as e:
        raise SystemExit(str(e))
    if args.distrust is not None and not 0 < args.distrust < 1:
        raise SystemExit(f'--distrust must be a share in (0, 1), got '
                         f'{args.distrust}')
    cfg = Config.fromfile(args.config)
    model = MODELS.build(cfg.model)
    if getattr(model, 'aggregator', None) is None:
        raise SystemExit(f'the model of {args.config} has no aggregator: '
                         'this diagnostic needs an RCL model')
    try:
        load_checkpoint_checked(model, args.checkpoint)
    except CheckpointMismatchError as e:
        raise SystemExit(str(e))
    model.eval()
    try:
        loader = build_cluster_dataloader(cfg)
    except ValueError as e:
        raise SystemExit(str(e))
    dataset = loader.dataset
    if args.features:
        feats = torch.from_numpy(np.load(args.features)['features'])
        if len(feats) != len(dataset):
            raise SystemExit(f'{args.features} holds {len(feats)} features '
                             f'but the train split has {len(dataset)} images')
    else:
        feats = extract_dataset_features(model, loader, len(dataset))
    true_ids = np.asarray(dataset.get_person_ids())
    if args.use_saved_labels:
        labels = model.pseudo_labels.cpu().numpy()
        if len(labels) != len(dataset):
            raise SystemExit(
                f'the checkpoint holds {len(labels)} pseudo labels but the '
                f'train split has {len(dataset)} images')
    else:
        try:
            generator = build_label_generator(cfg, source=args.config)
        except ValueError as e:
            raise SystemExit(str(e))
        cameras = dataset.get_camera_ids() if getattr(
            generator, 'uses_cameras', False) else None
        labels = contiguous_labels(
            np.asarray(generator(feats.numpy(), cameras=cameras)))
        extra = dict(cameras=torch.as_tensor(dataset.get_camera_ids())) \
            if getattr(model, 'needs_cameras', False) else {}
        model.set_clusters(feats, torch.as_tensor(labels), epoch=0, **extra)
    if args.save_features:
        np.savez(args.save_features, features=feats.numpy(), labels=labels,
                 true_ids=true_ids)
    impostor = impostor_flags(labels, true_ids)
    sets = draw_sets(labels, args.k, args.sets_per_cluster, args.seed)
    x = feats[torch.as_tensor(sets)]
    with torch.no_grad():
        out = model.aggregator(x)
        refined = torch.nn.functional.normalize(out['refined'], dim=-1)
        dispersion = 1 - (refined * out['aggregate'][:, None]).sum(-1)
        protos = model.head.memory.prototypes[torch.as_tensor(
            labels[sets[:, 0]])]
        proto_sims = (x * protos[:, None]).sum(-1)
    weights = out['weights'].numpy()
    imp = impostor[sets]
    floor = (0.5 if model.hps_floor is None else model.hps_floor) / args.k
    xs = x.numpy()
    mutual = mean_mutual_similarity(xs)
    # HPS never picks the images its clustering distrusts (hps.distrust).
    trusted = None
    if getattr(model, 'hps_distrust', 0.0) > 0:
        from mmreid_rcl.models.memories import cluster_trust
        cameras = torch.as_tensor(dataset.get_camera_ids()) \
            if model.needs_cameras else None
        trusted = cluster_trust(feats, torch.as_tensor(labels),
                                model.head.memory.prototypes,
                                model.hps_distrust,
                                cameras=cameras).numpy()[sets]
    rates = pick_rates(weights, dispersion.numpy(), proto_sims.numpy(), imp,
                       floor, mutual, trusted)
    ref_w = similarity_weights(xs, args.reference_temperature)
    ref_agg = (ref_w[..., None] * xs).sum(1)
    ref_agg /= np.linalg.norm(ref_agg, axis=1, keepdims=True)
    ref_disp = 1 - np.einsum('skd,sd->sk', xs, ref_agg)
    ref_rates = pick_rates(ref_w, ref_disp, proto_sims.numpy(), imp, floor,
                           mutual, trusted)
    mutual_w = mutual_similarity_weights(xs, args.reference_temperature)
    targets = labels[sets[:, 0]]
    plain = xs.mean(1)
    plain /= np.linalg.norm(plain, axis=1, keepdims=True)
    # The trained weights on the members' own features (no refinement):
    # separates what the weights do from what the residual branch does.
    weighted = (weights[..., None] * xs).sum(1)
    weighted /= np.linalg.norm(weighted, axis=1, keepdims=True)
    losses = {
        name: set_loss(model.head.memory, agg, targets)
        for name, agg in (('trained', out['aggregate'].numpy()),
                          ('trained_weights_on_inputs', weighted),
                          ('plain_mean', plain), ('reference', ref_agg))
    }
    result = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        k=args.k,
        floor=floor,
        num_sets=len(sets),
        clusters=int(labels.max() + 1),
        impostor_share_clustered=float(impostor[labels >= 0].mean()),
        weight_auc_genuine_over_impostor=impostor_auc(weights, imp),
        # A member's cosine to its prototype (the whole cluster's witness)
        # and its mean cosine to the other members of its set.
        prototype_similarity_auc=impostor_auc(proto_sims.numpy(), imp),
        set_similarity_auc=impostor_auc(mutual, imp),
        weight_within_set_auc=within_set_auc(weights, imp),
        single_impostor_lowest=single_impostor_lowest(weights, imp),
        weight_entropy=normalised_entropy(weights),
        weight_min_max_ratio=float(
            (weights.min(1) / weights.max(1)).mean()),
        pick_impostor_rate=rates,
        set_loss=losses,
        reference=dict(
            temperature=args.reference_temperature,
            weight_auc_genuine_over_impostor=impostor_auc(ref_w, imp),
            weight_within_set_auc=within_set_auc(ref_w, imp),
            single_impostor_lowest=single_impostor_lowest(ref_w, imp),
            pick_impostor_rate=ref_rates),
        # softmax(mean similarity to the others / T): what an untrained
        # SimilarityAttentionAggregator gives.
        mutual_reference=dict(
            temperature=args.reference_temperature,
            weight_auc_genuine_over_impostor=impostor_auc(mutual_w, imp),
            weight_within_set_auc=within_set_auc(mutual_w, imp),
            single_impostor_lowest=single_impostor_lowest(mutual_w, imp)))
    print(f'{len(sets)} sets of {args.k} from {result["clusters"]} clusters;'
          f' impostors among clustered samples: '
          f'{result["impostor_share_clustered"]:.1%}')
    print(f'attention weight: AUC genuine > impostor '
          f'{result["weight_auc_genuine_over_impostor"]:.3f}, normalised '
          f'entropy {result["weight_entropy"]:.4f}, mean min/max '
          f'{result["weight_min_max_ratio"]:.3f}, members at or above the '
          f'floor {floor:.3f}: {rates["hps_eligible"]:.1%}')
    for name, part in (('attention weight', result),
                       ('similarity-only reference (received, T = '
                        f'{args.reference_temperature})', result['reference']),
                       ('mean-similarity reference',
                        result['mutual_reference'])):
        print(f'{name}: AUC genuine > impostor '
              f'{part["weight_auc_genuine_over_impostor"]:.3f}, within sets '
              f'{part["weight_within_set_auc"]:.3f}; a lone impostor weighs '
              f'least in {part["single_impostor_lowest"]:.1%} of its sets')
    print(f'AUC genuine > impostor of a member\'s cosine to its prototype '
          f'{result["prototype_similarity_auc"]:.3f}, of its mean cosine to '
          f'the other members of its set {result["set_similarity_auc"]:.3f}')
    print(f'SAA loss of the sets against the memory: trained aggregate '
          f'{losses["trained"]:.3f}, trained weights on the unrefined '
          f'members {losses["trained_weights_on_inputs"]:.3f}, plain mean '
          f'{losses["plain_mean"]:.3f}, reference-weighted mean '
          f'{losses["reference"]:.3f}')
    print('| rule | picked sample is an impostor | with the reference '
          'weights |\n| --- | --- | --- |')
    for key, name in (('any', 'any member (mean update)'),
                      ('hard', 'hard (least similar to prototype)'),
                      ('hps', 'HPS (largest dispersion above floor)'),
                      ('most_attended', 'most attended'),
                      ('central', 'central (most similar to the others)')):
        print(f'| {name} | {rates[key]:.1%} | {ref_rates[key]:.1%} |')
    share = args.distrust if args.distrust is not None else (
        getattr(model, 'hps_distrust', 0.0) or 0.2)
    if hasattr(dataset, 'get_camera_ids'):
        result['distrust'] = dict(
            share=share,
            **distrust_report(feats, labels, true_ids,
                              dataset.get_camera_ids(),
                              model.head.memory.prototypes, share))
        print(f'| the {share:.0%} least typical images, judged | impostors '
              'caught | impostors among them | seen from another camera '
              'than most of their cluster | genuine cross-camera members '
              'lost |\n| --- | --- | --- | --- | --- |')
        for name, how in (('cluster', 'by the prototype'),
                          ('camera', 'per camera')):
            part = result['distrust'][name]
            print(f'| {how} | {part["impostors_caught"]:.1%} | '
                  f'{part["impostor_share"]:.1%} | '
                  f'{part["other_camera_share"]:.1%} | '
                  f'{part["genuine_other_camera_lost"]:.1%} |')
        # The same picks, counted when they are genuine members seen from
        # another camera than most of their cluster's (cross-camera views).
        cross = (other_camera_flags(labels, dataset.get_camera_ids())
                 & ~impostor)[sets]
        result['pick_genuine_other_camera'] = pick_rates(
            weights, dispersion.numpy(), proto_sims.numpy(), cross, floor,
            mutual, trusted)
        print('picked sample is a genuine member from another camera than '
              'most of its cluster: ' + ', '.join(
                  f'{key} {result["pick_genuine_other_camera"][key]:.1%}'
                  for key in ('any', 'hard', 'hps', 'central')))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)


if __name__ == '__main__':
    main()
