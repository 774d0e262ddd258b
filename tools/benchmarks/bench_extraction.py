"""Benchmark feature extraction: model throughput and data loading.

Model throughput: images per second of ``UnsupervisedReID`` in
``mode='tensor'`` (backbone, neck, L2 normalisation), in eval mode, on
preprocessed images already in memory (no data loading), for ResNet-50
(last stride 1) and MobileNetV2 built from the model sections of
``configs/cluster_contrast/cluster_contrast_r50_16x16_market.py`` and
``configs/cluster_contrast/cluster_contrast_mobilenetv2_cpu_cuhk03.py``.
The images are real ones (``--data-root``, through the test pipeline and
the data preprocessor) or, without data, seeded synthetic ones. Weights:
ImageNet MobileNetV2 when ``--mobilenetv2-weights`` exists, otherwise a
seeded random initialisation whose BatchNorm statistics are re-estimated
on the images (so activations have a trained network's scale).

Measured per model: the fp32 baseline (``torch.no_grad``, NCHW) over a
batch-size sweep, then at one batch size (``--option-batch``) the options
``torch.inference_mode``, channels-last, both, bf16 autocast (with and
without channels-last) and other thread counts. Each option's features
are compared with the fp32 baseline's features of the same images (the
largest cosine distance ``1 - cos``). An option "proves faster" when it is
at least ``--speed-tolerance`` faster than the baseline and its cosine
distance is at most ``--tolerance``; each row names the switch that
selects the option (``model.channels_last=True`` in a config for
channels-last). An option that would take longer than ``--max-case-time``
(bf16 autocast emulated on CPUs without bf16 instructions) is timed on a
smaller batch, which is reported. All cases are timed in ``--rounds``
interleaved rounds, so that load from other jobs affects them alike.

Then, in a separate process, the fp32 and channels-last cases run again
with glibc malloc told to keep freed memory (``--malloc keep``, see
:func:`keep_freed_memory`): by default every activation above 32 MB is a
fresh mmap that the kernel must fault in and zero on every batch.

Data loading, measured apart in its own process: decoding and resizing
(``LoadReIDImage`` + ``Resize`` to the model input, bicubic, as the test
pipeline) in one worker with one thread, on the files of ``--data-root``
(or on generated JPEGs when it is missing), after one pass that puts the
files in the page cache; with the configs' resize (PIL's, which
antialiases) and with OpenCV's, the switch that reverts it.

Each model and the data loading run in a fresh subprocess. ``--json OUT``
writes rows ``{stage, figure, comparison, target, met}`` (what
``tools/benchmarks/run_all.py`` tabulates).

Examples::

    python tools/benchmarks/bench_extraction.py
    python tools/benchmarks/bench_extraction.py --models mobilenetv2 \\
        --batch-sizes 32 64 --json extraction.json
    python tools/benchmarks/bench_extraction.py --quick
"""
import argparse
import glob
import os
import os.path as osp
import statistics
import sys
import tempfile
import time

from mmreid_rcl.utils.worker_process import (add_worker_options, print_rows,
                                             run_worker_process, start_worker,
                                             without_json, write_result)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SHARED = os.environ.get('MMREID_RCL_SHARED', osp.join(REPO, '..', 'shared'))
MODEL_CONFIGS = {
    'resnet50':
    'configs/cluster_contrast/cluster_contrast_r50_16x16_market.py',
    'mobilenetv2':
    'configs/cluster_contrast/cluster_contrast_mobilenetv2_cpu_cuhk03.py',
}
MODEL_NAMES = {'resnet50': 'ResNet-50', 'mobilenetv2': 'MobileNetV2'}
STAGE = 'feature extraction'

# How each option is selected outside this script.
SWITCHES = {
    'inference_mode': 'no switch (the hooks and loops use torch.no_grad)',
    'channels_last': 'switch: model.channels_last=True',
    'channels_last + inference_mode': 'switch: model.channels_last=True '
    '(inference_mode has none)',
    'bf16 autocast': 'no switch',
    'bf16 autocast + channels_last': 'no switch',
}
# (name, channels_last, inference_mode, bf16 autocast); threads apart.
OPTIONS = [
    ('inference_mode', False, True, False),
    ('channels_last', True, False, False),
    ('channels_last + inference_mode', True, True, False),
    ('bf16 autocast', False, False, True),
    ('bf16 autocast + channels_last', True, False, True),
]


def default_data_root() -> str:
    for root in (osp.join(REPO, 'data', 'cuhk03_labeled'),
                 osp.join(SHARED, 'data', 'cuhk03_labeled')):
        if osp.isdir(root):
            return root
    return osp.join(SHARED, 'data', 'cuhk03_labeled')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--models',
        nargs='+',
        default=['resnet50', 'mobilenetv2'],
        choices=sorted(MODEL_CONFIGS))
    parser.add_argument('--height', type=int, default=256)
    parser.add_argument('--width', type=int, default=128)
    parser.add_argument(
        '--batch-sizes',
        type=int,
        nargs='+',
        default=[32, 64, 128],
        help='batch sizes of the fp32 sweep')
    parser.add_argument(
        '--option-batch',
        type=int,
        default=64,
        help='batch size at which the options are compared')
    parser.add_argument(
        '--threads',
        type=int,
        nargs='*',
        default=None,
        help='other torch thread counts to try (default: 1, unless the '
        'machine has one core)')
    parser.add_argument(
        '--min-time',
        type=float,
        default=5.0,
        help='time each case for at least this many seconds in all')
    parser.add_argument(
        '--rounds',
        type=int,
        default=2,
        help='interleaved timing rounds over all cases')
    parser.add_argument(
        '--max-case-time',
        type=float,
        default=30.0,
        help='shrink the batch of a case whose rounds would take longer')
    parser.add_argument(
        '--tolerance',
        type=float,
        default=1e-4,
        help='largest acceptable cosine distance to the fp32 features')
    parser.add_argument(
        '--speed-tolerance',
        type=float,
        default=0.05,
        help='an option must be this much faster (0.05 = 5 %%)')
    parser.add_argument('--data-root', default=default_data_root())
    parser.add_argument(
        '--mobilenetv2-weights',
        default=osp.join(SHARED, 'weights', 'mobilenetv2_imagenet.pt'),
        help="ImageNet weights of MobileNetV2 ('none': random init)")
    parser.add_argument(
        '--load-images',
        type=int,
        default=400,
        help='images decoded in the data-loading measurement')
    parser.add_argument(
        '--no-loading',
        action='store_true',
        help='skip the data-loading measurement')
    add_worker_options(
        parser,
        compare_help='skip the run of the fp32 and channels-last cases with '
        '--malloc keep in a separate process',
        quick_help='MobileNetV2 only, 128x64, short timings (a smoke test)')
    args = parser.parse_args(argv)
    if args.quick:
        args.models = ['mobilenetv2']
        args.height, args.width = 128, 64
        args.batch_sizes, args.option_batch = [16, 32], 16
        args.min_time, args.max_case_time = 0.5, 3.0
        args.load_images = min(args.load_images, 100)
    if args.threads is None:
        args.threads = [1] if (os.cpu_count() or 1) > 1 else []
    for name in ('batch_sizes', 'threads'):
        if any(v < 1 for v in getattr(args, name)):
            parser.error(f'--{name.replace("_", "-")} must be positive')
    if args.option_batch < 1 or args.rounds < 1:
        parser.error('--option-batch and --rounds must be positive')
    return args


# -- images -----------------------------------------------------------------
def list_images(root: str, limit: int) -> list:
    """Sorted image files of a Market-layout split (train split first)."""
    files = []
    for split in ('bounding_box_train', 'bounding_box_test', 'query'):
        files += sorted(glob.glob(osp.join(root, split, '*.jpg')))
        if len(files) >= limit:
            break
    return files[:limit]


def write_synthetic_jpegs(folder: str, num: int, seed: int) -> list:
    """Seeded 64x128 JPEGs (a smooth random picture each), Market-sized."""
    import cv2
    import numpy as np
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(num):
        small = rng.integers(0, 256, (16, 8, 3), dtype=np.uint8)
        img = cv2.resize(small, (64, 128), interpolation=cv2.INTER_CUBIC)
        img = np.clip(
            img.astype(np.int16) + rng.integers(-20, 21, img.shape), 0,
            255).astype(np.uint8)
        path = osp.join(folder, f'{i:04d}_c1s1_{i:06d}_00.jpg')
        cv2.imwrite(path, img)
        paths.append(path)
    return paths


def test_pipeline(height: int,
                  width: int,
                  pack: bool = True,
                  backend: str = 'pillow'):
    """The test pipeline of the configs at the given size (``backend``:
    the resize's, ``'pillow'`` as in the configs or ``'cv2'``)."""
    from mmcv.transforms import Compose

    from mmreid_rcl.utils import register_all_modules
    register_all_modules()
    steps = [
        dict(type='LoadReIDImage'),
        dict(
            type='Resize',
            scale=(width, height),
            keep_ratio=False,
            interpolation='bicubic',
            backend=backend),
    ]
    if pack:
        steps.append(dict(type='PackReIDInputs'))
    return Compose(steps)


def model_inputs(args, num: int):
    """(num, 3, H, W) preprocessed images and where they come from."""
    import torch

    from mmreid_rcl.registry import MODELS
    files = list_images(args.data_root, num)
    if len(files) < num:
        gen = torch.Generator().manual_seed(args.seed)
        # Smooth random pictures on the 0-255 scale.
        small = torch.rand(
            num, 3, args.height // 16, args.width // 16, generator=gen) * 255
        raw = torch.nn.functional.interpolate(
            small, size=(args.height, args.width), mode='bilinear')
        source = 'synthetic images'
        data = dict(inputs=raw)
    else:
        pipeline = test_pipeline(args.height, args.width)
        packed = [pipeline(dict(img_path=f)) for f in files]
        data = dict(inputs=[p['inputs'] for p in packed])
        source = f'{num} images of {args.data_root}'
    preprocessor = MODELS.build(dict(type='ReIDDataPreprocessor'))
    return preprocessor(data, False)['inputs'], source


# -- model ------------------------------------------------------------------
def build_model(args, name: str, channels_last: bool):
    """The config's model without its checkpoint, in eval mode."""
    import copy

    from mmengine.config import Config

    from mmreid_rcl.registry import MODELS
    from mmreid_rcl.utils import register_all_modules
    register_all_modules()
    cfg = copy.deepcopy(
        Config.fromfile(osp.join(REPO, MODEL_CONFIGS[name])).model)
    cfg['backbone'].pop('init_cfg', None)
    cfg['channels_last'] = channels_last
    return MODELS.build(cfg).eval()


def initial_state(args, name: str, images):
    """Weights shared by every case: ImageNet or calibrated random."""
    import torch
    torch.manual_seed(args.seed)
    model = build_model(args, name, False)
    weights = args.mobilenetv2_weights
    if name == 'mobilenetv2' and weights != 'none' and osp.isfile(weights):
        from mmreid_rcl.models.backbones import load_mobilenetv2_source
        model.backbone.load_state_dict(load_mobilenetv2_source(weights))
        return model.state_dict(), 'ImageNet weights'
    # Random weights: re-estimate BatchNorm statistics on the images (a
    # cumulative average), so that eval-mode activations are normalised.
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    with torch.no_grad():
        for start in range(0, len(images), 32):
            model(images[start:start + 32], mode='tensor')
    return model.state_dict(), 'random weights, BatchNorm re-estimated'


class Case:
    """One configuration of the model, timed over several rounds."""

    def __init__(self, label: str, model, batch: int, inference: bool,
                 bf16: bool, threads: int) -> None:
        self.label, self.model, self.batch = label, model, batch
        self.inference, self.bf16, self.threads = inference, bf16, threads
        self.times, self.features = [], None

    def forward(self, x):
        import torch
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        grad_off = (
            torch.inference_mode() if self.inference else torch.no_grad())
        try:
            with grad_off, torch.autocast(
                    'cpu', dtype=torch.bfloat16, enabled=self.bf16):
                return self.model(x, mode='tensor').float()
        finally:
            torch.set_num_threads(previous)

    def fit_batch(self, images, min_batches: int, max_time: float) -> None:
        """Warm up on a small probe; shrink the batch (to a power of two)
        if ``min_batches`` batches would take longer than ``max_time``."""
        probe = min(2, self.batch)
        start = time.perf_counter()
        self.forward(images[:probe])
        per_image = (time.perf_counter() - start) / probe
        if per_image * self.batch * min_batches > max_time:
            fit = int(max_time / min_batches / per_image)
            self.batch = min(self.batch, 2**max(0, fit.bit_length() - 1))

    def run(self, images, min_time: float, max_time: float) -> None:
        """Time batches for ``min_time`` (at least one, at most
        ``max_time``); the first batch always holds the first images."""
        begin = time.perf_counter()
        done = 0
        while done < 1 or time.perf_counter() - begin < min_time:
            offset = (len(self.times) * self.batch) % max(
                1,
                len(images) - self.batch + 1)
            start = time.perf_counter()
            out = self.forward(images[offset:offset + self.batch])
            self.times.append(time.perf_counter() - start)
            if self.features is None:
                self.features = out
            done += 1
            if time.perf_counter() - begin > max_time:
                break

    def result(self) -> dict:
        median = statistics.median(self.times)
        return dict(
            option=self.label,
            batch=self.batch,
            batches=len(self.times),
            seconds_per_batch=median,
            images_per_second=self.batch / median)


def max_cosine_distance(a, b) -> float:
    import torch.nn.functional as F
    n = min(len(a), len(b))
    cos = (F.normalize(a[:n].double(), dim=1) *
           F.normalize(b[:n].double(), dim=1)).sum(1)
    return float((1 - cos).max().clamp(min=0))


def model_worker(args, name: str) -> dict:
    """Every case of one model, in this process.

    The cases are timed in ``--rounds`` interleaved rounds (each gets its
    share of ``--min-time`` per round), so that a change of load on a
    shared machine affects them alike; a case's rate comes from the median
    batch time over all rounds.
    """
    import torch
    default_threads = torch.get_num_threads()
    num = max(args.batch_sizes + [args.option_batch])
    images, source = model_inputs(args, num)
    state, weights = initial_state(args, name, images)
    models = {}

    def model_for(channels_last):
        if channels_last not in models:
            model = build_model(args, name, channels_last)
            model.load_state_dict(state)
            models[channels_last] = model
        return models[channels_last]

    sizes = sorted(set(args.batch_sizes + [args.option_batch]))
    option_list, thread_list = OPTIONS, args.threads
    if args.malloc_run:  # only the baseline and channels-last
        sizes, thread_list = [args.option_batch], []
        option_list = [o for o in OPTIONS if o[0] == 'channels_last']
    sweep = {
        b: Case('fp32', model_for(False), b, False, False, default_threads)
        for b in sizes
    }
    options = [
        Case(label, model_for(channels_last), args.option_batch, inference,
             bf16, default_threads)
        for label, channels_last, inference, bf16 in option_list
    ]
    options += [
        Case(f'{t} thread' + ('s' if t > 1 else ''), model_for(False),
             args.option_batch, False, False, t) for t in thread_list
        if t != default_threads
    ]
    baseline = sweep[args.option_batch]
    # Warm up the baseline on a whole batch, then every option on a probe
    # (which also fits slow options into --max-case-time).
    baseline.forward(images[:min(baseline.batch, 64)])
    for case in options:
        case.fit_batch(images, args.rounds, args.max_case_time)
    for round_ in range(args.rounds):
        for case in sweep.values():
            case.run(images, args.min_time / args.rounds, float('inf'))
        for case in options:
            case.run(images, args.min_time / args.rounds,
                     args.max_case_time / args.rounds)
        print(
            f'  {name}: round {round_ + 1} of {args.rounds} done',
            file=sys.stderr,
            flush=True)
    ref = baseline.features
    out = dict(
        model=name,
        input=f'{args.height}x{args.width}',
        images=source,
        weights=weights,
        threads=default_threads,
        malloc=args.malloc,
        baseline=dict(baseline.result(), max_cos_dist=0.0),
        sweep=[
            sweep[b].result() for b in sorted(set(args.batch_sizes))
            if b in sweep
        ],
        options=[])
    for case in options:
        r = case.result()
        r['max_cos_dist'] = max_cosine_distance(case.features, ref)
        out['options'].append(r)
    for r in out['sweep'] + out['options']:
        print(
            f'  {name} {r["option"]} batch {r["batch"]}: '
            f'{r["images_per_second"]:.1f} img/s' +
            (f', max cos dist {r["max_cos_dist"]:.1e}'
             if 'max_cos_dist' in r else ''),
            file=sys.stderr)
    return out


def loading_worker(args) -> dict:
    """Decode + resize rate of one worker with one thread."""
    import cv2
    import torch
    cv2.setNumThreads(0)  # as mmengine sets it in data-loader workers
    torch.set_num_threads(1)
    files = list_images(args.data_root, args.load_images)
    tmp = None
    source = args.data_root
    if len(files) < args.load_images:
        tmp = tempfile.TemporaryDirectory()
        files = write_synthetic_jpegs(tmp.name, args.load_images, args.seed)
        source = 'generated 64x128 JPEGs'
    for f in files:  # page cache
        with open(f, 'rb') as fh:
            fh.read()
    rates = {}
    for backend in ('pillow', 'cv2'):
        pipeline = test_pipeline(
            args.height, args.width, pack=False, backend=backend)
        start = time.perf_counter()
        for f in files:
            pipeline(dict(img_path=f))
        rates[backend] = len(files) / (time.perf_counter() - start)
    if tmp is not None:
        tmp.cleanup()
    return dict(
        source=source,
        images=len(files),
        images_per_second=rates['pillow'],
        images_per_second_cv2=rates['cv2'])


# -- rows -------------------------------------------------------------------
def option_rows(result: dict, args) -> list:
    name = MODEL_NAMES[result['model']]
    base = result['baseline']
    sweep = ', '.join(f'{r["batch"]}: {r["images_per_second"]:.1f}'
                      for r in result['sweep'])
    rows = [
        dict(
            stage=STAGE,
            figure=f'{name} {result["input"]} fp32 (no_grad, NCHW): '
            f'{base["images_per_second"]:.1f} img/s at batch '
            f'{base["batch"]}',
            comparison=f'img/s by batch size {sweep}; {result["threads"]} '
            f'threads; {result["weights"]}; malloc {result["malloc"]}',
            target='',
            met=None)
    ]
    tol = f'{args.tolerance:.0e}'
    # An option shrunk to another batch size is compared with the fp32
    # rate at that size when the sweep has it.
    fp32_at = {r['batch']: r for r in result['sweep']}
    fp32_at[base['batch']] = base
    for r in result['options']:
        ref = fp32_at.get(r['batch'], base)
        speedup = r['images_per_second'] / ref['images_per_second']
        faster = speedup >= 1 + args.speed_tolerance
        close = r['max_cos_dist'] <= args.tolerance
        at = '' if r['batch'] == base['batch'] else f' (batch {r["batch"]})'
        rows.append(
            dict(
                stage=STAGE,
                figure=f'{name} {r["option"]}: '
                f'{r["images_per_second"]:.1f} img/s{at}',
                comparison=f'x{speedup:.2f} vs fp32 at batch {ref["batch"]}'
                f', max cosine distance {r["max_cos_dist"]:.1e}; ' +
                SWITCHES.get(r['option'], 'switch: OMP_NUM_THREADS'),
                target=f'>= x{1 + args.speed_tolerance:.2f} and <= {tol}',
                met=bool(faster and close)))
    return rows


def malloc_rows(kept: dict, glibc: dict, args) -> list:
    """The cases run with freed memory kept, against glibc defaults."""
    name = MODEL_NAMES[kept['model']]
    before = {r['option']: r for r in glibc['options']}
    before['fp32'] = glibc['baseline']
    rows = []
    for r in [dict(kept['baseline'], option='fp32')] + kept['options']:
        ref = before[r['option']]
        speedup = r['images_per_second'] / ref['images_per_second']
        batches = ('' if r['batch'] == ref['batch'] else
                   f', batch {r["batch"]} vs {ref["batch"]}')
        rows.append(
            dict(
                stage=STAGE,
                figure=f'{name} {r["option"]} with freed memory kept '
                f'(mallopt): {r["images_per_second"]:.1f} img/s',
                comparison=f'x{speedup:.2f} vs glibc malloc defaults '
                f'({ref["images_per_second"]:.1f} img/s, separate process'
                f'{batches}), same computation',
                target=f'>= x{1 + args.speed_tolerance:.2f}',
                met=bool(speedup >= 1 + args.speed_tolerance)))
    return rows


def loading_rows(result: dict, models: list) -> list:
    rate = result['images_per_second']
    needs = []
    for m in models:
        best = max(
            [m['baseline']] + m['options'],
            key=lambda r: r['images_per_second'])
        needs.append(f'{rate / best["images_per_second"]:.0f}x what '
                     f'{MODEL_NAMES[m["model"]]} extracts at its best '
                     f'({best["images_per_second"]:.1f} img/s)')
    return [
        dict(
            stage=STAGE,
            figure=f'decode + resize (test pipeline, PIL): {rate:.0f} img/s '
            'per worker (1 thread)',
            comparison=(f'{result["images"]} images of {result["source"]}; '
                        f'OpenCV\'s resize (no antialiasing) '
                        f'{result["images_per_second_cv2"]:.0f} img/s' +
                        ''.join(f'; {n}' for n in needs)),
            target='',
            met=None)
    ]


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.worker:
        start_worker(args, 'bench_extraction')
        if args.worker == 'loading':
            result = loading_worker(args)
        else:
            result = model_worker(args, args.worker)
        write_result(args.result, result)
        return
    # Workers get the same arguments without --json.
    base_argv = without_json(argv)
    results, kept = [], []
    for name in args.models:
        print(f'{MODEL_NAMES[name]}:', flush=True)
        results.append(
            run_worker_process(__file__, base_argv, ['--worker', name]))
        if args.malloc == 'glibc' and not args.no_malloc_compare:
            kept.append(
                run_worker_process(
                    __file__, base_argv,
                    ['--worker', name, '--malloc', 'keep', '--malloc-run']))
    rows = []
    for i, result in enumerate(results):
        rows += option_rows(result, args)
        if kept:
            rows += malloc_rows(kept[i], result, args)
    if not args.no_loading:
        loading = run_worker_process(__file__, base_argv,
                                     ['--worker', 'loading'])
        rows += loading_rows(loading, results)
    print_rows(rows, args.json)


if __name__ == '__main__':
    main()
