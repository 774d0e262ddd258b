"""Which set objective teaches an aggregator to mark impostors? A probe on
the frozen features of a trained model.

    python tools/extract_features.py CONFIG CHECKPOINT --split train \\
        --out feats.npz
    python tools/analysis/probe_set_objective.py feats.npz \\
        --generator-config CONFIG --rcl-configs RCL_CONFIG [...] \\
        [--steps 500] [--seeds 0 1] [--cfg-options model.aggregator.rank=16]
        [--json out.json [--overwrite]]

The features (``features``, ``pids``, ``camids`` of ``extract_features.py
--split train``) are clustered once with the label generator of the
ReClusterHook of ``--generator-config`` (cameras passed when it reads
them). For each RCL config, its ``model.aggregator`` is trained with its
``model.set_losses`` on the sets of half of the clusters, against a
memory of their mean prototypes, and judged on the other half
(:func:`mmreid_rcl.apis.aggregator_probe.probe_set_objective`): the
weights' impostor AUC against the similarity reference, the share of
lone impostors with the lowest weight, and how often each update rule
would pick an impostor. ``--cfg-options`` changes every RCL config
before it is read (list items by index, e.g.
``model.set_losses.1.target=medoid``). Where a label generator or config is
wrong, the tool stops with the file named.
"""
import argparse
import json
import os.path as osp

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('features', help='.npz of extract_features.py '
                        '--split train (features, pids, camids)')
    parser.add_argument('--generator-config', required=True,
                        help='config whose ReClusterHook clusters them')
    parser.add_argument('--rcl-configs', nargs='+', required=True,
                        help='RCL configs: model.aggregator and '
                        'model.set_losses to probe')
    parser.add_argument('--steps', type=int, default=500)
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--k', type=int, default=4,
                        help='members per set (the sampler\'s K)')
    parser.add_argument('--num-ids', type=int, default=16,
                        help='pseudo identities per batch')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='override settings of every RCL config, key=value')
    parser.add_argument('--json', help='also write the figures here')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing --json')
    args = parser.parse_args(argv)
    if args.steps < 0 or args.k < 2 or args.num_ids < 2:
        parser.error('--steps must be >= 0, --k and --num-ids >= 2')
    return args


ROW = ('attention_auc', 'similarity_auc', 'similarity_score_auc',
       'single_impostor_lowest',
       'similarity_single_impostor_lowest', 'pick_any', 'pick_hard',
       'pick_hps', 'pick_central')


def main(argv=None):
    args = parse_args(argv)
    import torch
    from mmengine.config import Config

    from mmreid_rcl.apis import load_features
    from mmreid_rcl.apis.aggregator_probe import probe_set_objective
    from mmreid_rcl.engine.hooks import build_label_generator
    from mmreid_rcl.utils import register_all_modules
    from mmreid_rcl.utils.output_files import check_outputs

    register_all_modules()
    for path in [args.features, args.generator_config, *args.rcl_configs]:
        if not osp.isfile(path):
            raise SystemExit(f'{path} does not exist')
    if args.json:
        try:
            check_outputs([args.json], args.overwrite)
        except OSError as e:
            raise SystemExit(str(e))
    try:
        data = load_features(args.features)
    except (KeyError, ValueError) as e:
        raise SystemExit(str(e))
    missing = [k for k in ('pids', 'camids') if k not in data]
    if missing:
        raise SystemExit(f'{args.features} holds no {missing}: write it '
                         'with tools/extract_features.py --split train')
    feats = torch.as_tensor(data['features']).float()
    try:
        generator = build_label_generator(
            Config.fromfile(args.generator_config), args.generator_config)
        labels = generator(feats.numpy(), cameras=data['camids'])
    except ValueError as e:
        raise SystemExit(f'--generator-config {args.generator_config}: {e}')
    print(f'{len(labels)} images, {labels.max() + 1} clusters, '
          f'{(labels < 0).sum()} outliers')
    results = {}
    for path in args.rcl_configs:
        cfg = Config.fromfile(path)
        try:
            cfg.merge_from_dict(args.cfg_options, allow_list_keys=True)
        except (KeyError, IndexError, TypeError) as e:
            raise SystemExit(f'--cfg-options on {path}: {e}')
        model = cfg.model
        if 'aggregator' not in model:
            raise SystemExit(f'{path}: model.aggregator is missing: not '
                             'an RCL config')
        losses = model.get('set_losses', [dict(type='SetContrastiveLoss')])
        floor = (model.get('hps') or {}).get('floor', 0.5)
        try:
            runs = [
                probe_set_objective(feats, labels, data['pids'],
                                    model.aggregator, losses,
                                    steps=args.steps, num_ids=args.num_ids,
                                    k=args.k, lr=args.lr, floor_ratio=floor,
                                    seed=seed) for seed in args.seeds
            ]
        except (KeyError, TypeError, ValueError) as e:
            raise SystemExit(f'{path}: {e}')
        results[path] = runs
        for seed, run in zip(args.seeds, runs):
            print(f'\n{osp.basename(path)}, seed {seed}: '
                  f'{run["train_clusters"]} training clusters, '
                  f'{run["held_out_clusters"]} held out; losses at the end '
                  f'{run["losses"]}')
            print('| | ' + ' | '.join(ROW) + ' |\n|' + ' --- |' *
                  (len(ROW) + 1))
            for name in ('before', 'after'):
                cells = [f'{run[name].get(k, float("nan")):.3f}' for k in ROW]
                print(f'| {name} | ' + ' | '.join(cells) + ' |')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(features=args.features,
                           generator_config=args.generator_config,
                           steps=args.steps, lr=args.lr,
                           cfg_options=args.cfg_options, results=results),
                      f, indent=1)
    return results


if __name__ == '__main__':
    main()
