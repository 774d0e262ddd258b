"""Run the public cluster-contrast implementation on the CPU, as a yardstick.

    git clone https://github.com/alibaba/cluster-contrast-reid \\
        ../cluster-contrast-reid
    python tools/analysis/public_cluster_contrast_cpu.py \\
        --cc-root ../cluster-contrast-reid --eval-before -- \\
        -d cuhk03_labeled -a mobilenetv2 --data-dir ../shared/data \\
        --height 128 --width 64 -b 64 --num-instances 4 --iters 100 \\
        --epochs 12 --step-size 8 --momentum 0.2 --eps 0.6 --eval-step 1 \\
        --seed 0 -j 2 --logs-dir work_dirs/public_cluster_contrast

Everything after ``--`` goes unchanged to that repository's
``examples/cluster_contrast_train_usl.py`` (the arguments above are this
project's CPU recipe for CUHK03). Its sources are imported, not modified;
this script only adds the glue a CPU run needs:

- ``.cuda()`` on tensors and modules does nothing, and the k-reciprocal
  Jaccard distance takes its CPU faiss path (``search_option=3``);
- torch's ``Sampler`` accepts the ``data_source`` argument that their
  samplers pass (newer torch versions refuse it);
- an ``mobilenetv2`` architecture: torchvision's MobileNetV2 features with
  the ImageNet weights of ``--weights`` (the file of ../shared/weights, the
  same tensors this project's converter loads), GeM pooling and the
  BatchNorm neck with frozen bias of their ResNet;
- a ``cuhk03_labeled`` data set: their Market-1501 reader on a folder in
  Market layout (``--data-dir``/cuhk03_labeled);
- the final test loads the run's own best checkpoint with
  ``weights_only=False`` (it holds numpy scalars);
- every evaluation also prints rank-1 and rank-5, each clustering its
  clusters, outliers and the pseudo labels' ARI / NMI against the true
  train ids (outliers left out, as this project logs them; diagnostic
  only), each epoch's end and training time, and the wall time from one
  clustering to the next.

Lines of its own start with ``[yardstick]``;
:func:`mmreid_rcl.utils.public_run_logs.public_run_summary` reads them
(``python tools/run_ablation.py --protocol cuhk03_parity --cc-root ...``
runs this script for its ``public`` variant).
"""
import argparse
import functools
import os.path as osp
import runpy
import sys
import time

import numpy as np
import torch
import torchvision
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from torch import nn
from torch.nn import functional as F

DEFAULT_WEIGHTS = osp.join(
    osp.dirname(__file__), '..', '..', '..', 'shared', 'weights',
    'mobilenetv2_imagenet.pt')


def say(msg: str) -> None:
    print(f'[yardstick] {msg}', flush=True)


def load_mobilenetv2_features(weights: str) -> nn.Module:
    """torchvision's MobileNetV2 features with the tensors of ``weights``
    (a state dict or a list of tensors in torchvision's order)."""
    features = torchvision.models.mobilenet_v2().features
    src = torch.load(weights, map_location='cpu')
    src = list(src.values()) if isinstance(src, dict) else list(src)
    dst = features.state_dict()
    if len(src) != len(dst):
        raise ValueError(f'{weights}: {len(src)} tensors, MobileNetV2 '
                         f'features have {len(dst)}')
    state = {}
    for (name, ref), value in zip(dst.items(), src):
        if value.shape != ref.shape:
            raise ValueError(f'{weights}: tensor for {name} has shape '
                             f'{tuple(value.shape)}, expected '
                             f'{tuple(ref.shape)}')
        state[name] = value
    features.load_state_dict(state)
    return features


def patch(cc_root: str, weights: str) -> dict:
    """Make the public implementation run on the CPU; see the docstring."""
    sys.path.insert(0, cc_root)
    sys.path.insert(0, osp.join(cc_root, 'examples'))
    torch.Tensor.cuda = lambda self, *a, **k: self
    nn.Module.cuda = lambda self, *a, **k: self
    torch.utils.data.Sampler.__init__ = lambda self, *a, **k: None

    import clustercontrast.datasets as cc_datasets
    import clustercontrast.evaluators as cc_eval
    import clustercontrast.models as cc_models
    import clustercontrast.utils.faiss_rerank as cc_rerank
    import clustercontrast.utils.serialization as cc_serialization
    import sklearn.cluster
    from clustercontrast.datasets.market1501 import Market1501
    from clustercontrast.models.pooling import build_pooling_layer

    class MobileNetV2ReID(nn.Module):

        def __init__(self, pooling_type='gem', **kwargs):
            super().__init__()
            self.base = load_mobilenetv2_features(weights)
            self.gap = build_pooling_layer(pooling_type)
            self.num_features = 1280
            self.feat_bn = nn.BatchNorm1d(self.num_features)
            self.feat_bn.bias.requires_grad_(False)
            nn.init.constant_(self.feat_bn.weight, 1)
            nn.init.constant_(self.feat_bn.bias, 0)

        def forward(self, x):
            x = self.gap(self.base(x)).flatten(1)
            return F.normalize(self.feat_bn(x))

    class CUHK03Labeled(Market1501):
        dataset_dir = ''

    cc_models.__dict__['__factory']['mobilenetv2'] = MobileNetV2ReID
    cc_datasets.__dict__['__factory']['cuhk03_labeled'] = CUHK03Labeled
    cc_rerank.compute_jaccard_distance = functools.partial(
        cc_rerank.compute_jaccard_distance, search_option=3)

    def load_own_checkpoint(fpath):
        # The run's own best checkpoint (it holds numpy scalars, which
        # torch.load refuses by default since torch 2.6).
        if not osp.isfile(fpath):
            raise ValueError(f'no checkpoint found at {fpath}')
        say('test with the best model')
        return torch.load(fpath, map_location='cpu', weights_only=False)

    cc_serialization.load_checkpoint = load_own_checkpoint
    state = dict(dataset=None, last=None)
    create_dataset = cc_datasets.create

    def create_and_keep(name, root, *args, **kwargs):
        state['dataset'] = create_dataset(name, root, *args, **kwargs)
        return state['dataset']

    cc_datasets.create = create_and_keep
    evaluate = cc_eval.Evaluator.evaluate

    def evaluate_with_cmc(self, data_loader, query, gallery, cmc_flag=False,
                          rerank=False):
        cmc, mAP = evaluate(self, data_loader, query, gallery, cmc_flag=True,
                            rerank=rerank)
        say(f'eval mAP {mAP:.6f} rank1 {cmc[0]:.6f} rank5 {cmc[4]:.6f}')
        return (cmc, mAP) if cmc_flag else mAP

    cc_eval.Evaluator.evaluate = evaluate_with_cmc

    class DBSCANWithDiagnostics(sklearn.cluster.DBSCAN):

        def fit_predict(self, X, y=None, sample_weight=None):
            start = time.time()
            labels = super().fit_predict(X)
            true = np.array(
                [pid for _, pid, _ in sorted(state['dataset'].train)])
            keep = labels >= 0
            now = time.time()
            if state['last'] is not None:
                say(f'epoch wall {now - state["last"]:.1f} s')
            state['last'] = now
            say(f'clusters {labels.max() + 1} outliers {(~keep).sum()} '
                f'ARI {adjusted_rand_score(true[keep], labels[keep]):.4f} '
                f'NMI '
                f'{normalized_mutual_info_score(true[keep], labels[keep]):.4f}'
                f' dbscan {now - start:.1f} s')
            return labels

    sklearn.cluster.DBSCAN = DBSCANWithDiagnostics

    import clustercontrast.trainers as cc_trainers
    train_epoch = cc_trainers.ClusterContrastTrainer.train

    def train_and_say(self, epoch, *args, **kwargs):
        start = time.time()
        train_epoch(self, epoch, *args, **kwargs)
        say(f'trained epoch {epoch + 1} in {time.time() - start:.1f} s')

    cc_trainers.ClusterContrastTrainer.train = train_and_say
    return dict(model=MobileNetV2ReID, eval=cc_eval)


def main() -> None:
    argv = sys.argv[1:]
    rest = argv[argv.index('--') + 1:] if '--' in argv else []
    own = argv[:argv.index('--')] if '--' in argv else argv
    parser = argparse.ArgumentParser(
        description='Run the public cluster-contrast implementation on the '
        'CPU (arguments after -- go to its training script)')
    parser.add_argument(
        '--cc-root', required=True,
        help='a checkout of alibaba/cluster-contrast-reid')
    parser.add_argument('--weights', default=DEFAULT_WEIGHTS)
    parser.add_argument(
        '--eval-before', action='store_true',
        help='evaluate the untrained model first (reads -d, --data-dir, '
        '--height, --width and -j among the arguments after --)')
    args = parser.parse_args(own)
    script = osp.join(args.cc_root, 'examples',
                      'cluster_contrast_train_usl.py')
    if not osp.isfile(script):
        parser.error(f'--cc-root {args.cc_root}: no {script}; expected a '
                     'checkout of alibaba/cluster-contrast-reid')
    if not osp.isfile(args.weights):
        parser.error(f'--weights {args.weights}: no such file (the '
                     'MobileNetV2 ImageNet weights of ../shared/weights)')
    say('run start')
    parts = patch(args.cc_root, args.weights)
    if args.eval_before:
        import cluster_contrast_train_usl as cct
        their = argparse.ArgumentParser(add_help=False)
        their.add_argument('-d', '--dataset', required=True)
        their.add_argument('--data-dir', required=True)
        their.add_argument('--height', type=int, default=256)
        their.add_argument('--width', type=int, default=128)
        their.add_argument('-j', '--workers', type=int, default=4)
        known, _ = their.parse_known_args(rest)
        torch.manual_seed(0)
        dataset = cct.get_data(known.dataset, known.data_dir)
        net = nn.DataParallel(parts['model']())
        loader = cct.get_test_loader(dataset, known.height, known.width, 128,
                                     known.workers)
        say('before training (ImageNet features):')
        parts['eval'].Evaluator(net).evaluate(loader, dataset.query,
                                              dataset.gallery)
    sys.argv = [script] + rest
    start = time.time()
    runpy.run_path(script, run_name='__main__')
    say(f'total wall {time.time() - start:.1f} s')


if __name__ == '__main__':
    main()
