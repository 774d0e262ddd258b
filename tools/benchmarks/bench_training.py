"""Benchmark a training step: cluster contrast against RCL.

Images per second of a full training step (data preprocessor, forward,
contrastive losses, memory update, backward, Adam step) at 256x128 and a
batch of 64 = 16 pseudo identities x 4, for the cluster-contrast baseline
and RCL (CSA prototypes, SAA loss, HPS update), with MobileNetV2 and
ResNet-50. The models and optimisers are built from the model and
``optim_wrapper`` sections of

- ``configs/cluster_contrast/cluster_contrast_r50_16x16_market.py`` and
  ``configs/rcl/rcl_r50_16x16_market.py`` (ResNet-50, last stride 1),
- ``configs/cluster_contrast/cluster_contrast_mobilenetv2_cpu_cuhk03.py``
  and ``configs/rcl/rcl_mobilenetv2_cpu_cuhk03.py`` (the CPU recipe's
  MobileNetV2, channels-last),

without their checkpoints (random weights: the speed does not depend on
them). The clustering is fake: ``--clusters`` (500) clusters of
``--per-cluster`` random unit features install the prototypes (CSA for
RCL) and the pseudo labels, and the batches are random tensors with the
sample indices of P clusters x K members: NO data loading is measured
here (see ``bench_extraction.py`` for decoding and resizing).

The baseline and RCL models live in one process and their steps are
interleaved (ABBA order), so that load from other jobs on a shared machine
affects both alike; each figure is the median over ``--steps`` steps after
``--warmup``. RCL's extra cost is ``t_rcl / t_baseline - 1``.

Arithmetic: the first warm-up step runs under
``torch.utils.flop_counter.FlopCounterMode``, which counts the matrix
products and convolutions of the forward and backward passes (element-wise
work is not counted; the backward of grouped convolutions is counted with
:func:`conv_backward_flop`, torch's own formula overcounts it). The CPU's
peak is measured in the same process with
a large fp32 ``torch.mm``; the step's achieved GFLOPS over that peak is
the fraction reported. The Adam step is also timed over the RCL model's
parameters with and without ``fused=True``.

Then, in a separate process, the baseline runs again with glibc malloc
told to keep freed memory (``--malloc keep``, see
:func:`keep_freed_memory`): by default every activation above 32 MB is a
fresh mmap that the kernel faults in and zeroes again at every step.
Per-step CPU time (all threads) is reported beside wall time: on a shared
machine it is the steadier of the two.

Every backbone runs in a fresh subprocess. ``--json OUT`` writes rows
``{stage, figure, comparison, target, met}`` (what
``tools/benchmarks/run_all.py`` tabulates).

Examples::

    python tools/benchmarks/bench_training.py
    python tools/benchmarks/bench_training.py --backbones mobilenetv2 \\
        --steps 6 --json training.json
    python tools/benchmarks/bench_training.py --profile prof   # traces
"""
import argparse
import os
import os.path as osp
import statistics
import sys
import time

from mmreid_rcl.utils.worker_process import (add_worker_options, print_rows,
                                             run_worker_process, start_worker,
                                             without_json, write_result)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = {
    'resnet50':
    ('configs/cluster_contrast/cluster_contrast_r50_16x16_market.py',
     'configs/rcl/rcl_r50_16x16_market.py'),
    'mobilenetv2':
    ('configs/cluster_contrast/cluster_contrast_mobilenetv2_cpu_cuhk03.py',
     'configs/rcl/rcl_mobilenetv2_cpu_cuhk03.py'),
}
NAMES = {'resnet50': 'ResNet-50', 'mobilenetv2': 'MobileNetV2'}
VARIANTS = ('baseline', 'rcl')
TARGET_EXTRA = 10.0  # RCL's extra cost per iteration, %


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--backbones',
        nargs='+',
        default=['mobilenetv2', 'resnet50'],
        choices=sorted(CONFIGS))
    parser.add_argument('--height', type=int, default=256)
    parser.add_argument('--width', type=int, default=128)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument(
        '--num-instances',
        type=int,
        default=4,
        help='K samples per pseudo identity in a batch')
    parser.add_argument('--clusters', type=int, default=500)
    parser.add_argument('--per-cluster', type=int, default=8)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument(
        '--steps',
        type=int,
        default=4,
        help='timed steps per variant (even: ABBA order is balanced)')
    parser.add_argument(
        '--channels-last',
        choices=['config', 'on', 'off'],
        default='config',
        help='backbone memory format')
    parser.add_argument(
        '--peak-size',
        type=int,
        default=2048,
        help='n of the n x n x n torch.mm that measures the peak')
    parser.add_argument('--peak-time', type=float, default=3.0)
    parser.add_argument(
        '--optimizer-steps',
        type=int,
        default=3,
        help='Adam steps timed with and without fused=True (0: skip)')
    parser.add_argument(
        '--rcl-config',
        help='time this RCL config instead of the backbone\'s default '
        '(with one --backbones entry, the one it is built on)')
    parser.add_argument(
        '--profile',
        help='also write a torch.profiler table of one step '
        'of each variant to this folder')
    add_worker_options(
        parser,
        compare_help='skip the baseline run with --malloc keep in a '
        'separate process',
        quick_help='MobileNetV2 only, 128x64, batch 32, 1 step (a smoke '
        'test)')
    args = parser.parse_args(argv)
    if args.quick:
        args.backbones = ['mobilenetv2']
        args.height, args.width, args.batch_size = 128, 64, 32
        args.steps, args.peak_size, args.peak_time = 1, 1024, 0.5
        args.clusters = min(args.clusters, 100)
    if args.rcl_config and len(args.backbones) != 1:
        parser.error('--rcl-config needs exactly one --backbones entry')
    if args.rcl_config and not osp.isfile(args.rcl_config):
        parser.error(f'--rcl-config {args.rcl_config} does not exist')
    if args.batch_size % args.num_instances:
        parser.error(f'--batch-size {args.batch_size} must be a multiple '
                     f'of --num-instances {args.num_instances}')
    identities = args.batch_size // args.num_instances
    if identities > args.clusters:
        parser.error(f'a batch needs {identities} pseudo identities but '
                     f'--clusters is {args.clusters}')
    if args.per_cluster < args.num_instances:
        parser.error('--per-cluster must be at least --num-instances')
    if args.steps < 1 or args.warmup < 0:
        parser.error('--steps must be >= 1 and --warmup >= 0')
    return args


# -- in the worker ----------------------------------------------------------
def measure_peak(size: int, seconds: float) -> dict:
    """fp32 GFLOPS of an n x n by n x n torch.mm (median and best)."""
    import torch
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen)
    b = torch.randn(size, size, generator=gen)
    torch.mm(a, b)
    rates, begin = [], time.perf_counter()
    while len(rates) < 3 or time.perf_counter() - begin < seconds:
        start = time.perf_counter()
        torch.mm(a, b)
        rates.append(2 * size**3 / (time.perf_counter() - start) / 1e9)
    return dict(
        size=size,
        gflops=statistics.median(rates),
        best_gflops=max(rates),
        products=len(rates))


def build(args, backbone: str, variant: str):
    """(model, optim_wrapper) of a config, with a fake clustering."""
    import copy

    import torch
    import torch.nn.functional as F
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper

    from mmreid_rcl.registry import MODELS
    from mmreid_rcl.utils.config_utils import fit_optim_wrapper_to_device
    path = osp.join(REPO, CONFIGS[backbone][VARIANTS.index(variant)])
    if variant == 'rcl' and args.rcl_config:
        path = osp.abspath(args.rcl_config)
    cfg = Config.fromfile(path)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg['backbone'].pop('init_cfg', None)
    if args.channels_last != 'config':
        model_cfg['channels_last'] = args.channels_last == 'on'
    torch.manual_seed(args.seed)
    model = MODELS.build(model_cfg)
    model.train()
    optim_wrapper = build_optim_wrapper(
        model,
        fit_optim_wrapper_to_device(
            copy.deepcopy(cfg.optim_wrapper), source=path))
    num = args.clusters * args.per_cluster
    dim = model.head.memory.feat_dim
    gen = torch.Generator().manual_seed(args.seed)
    feats = F.normalize(torch.randn(num, dim, generator=gen), dim=1)
    labels = torch.arange(num) % args.clusters
    model.set_clusters(feats, labels, epoch=0)
    return model, optim_wrapper, path


class Timers:
    """Wall time spent in wrapped methods during a step."""

    def __init__(self) -> None:
        self.spent = {}

    def wrap(self, obj, name: str, key: str) -> None:
        original = getattr(obj, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            out = original(*args, **kwargs)
            self.spent[key] = self.spent.get(key, 0.0) + (
                time.perf_counter() - start)
            return out

        setattr(obj, name, timed)


def make_batch(args, gen) -> dict:
    """Random images and the sample indices of P clusters x K members."""
    import torch

    from mmreid_rcl.structures import ReIDDataSample
    ids = torch.randperm(args.clusters, generator=gen)
    ids = ids[:args.batch_size // args.num_instances]
    # Members of cluster c are c, c + C, c + 2C, ... (labels = idx % C).
    members = torch.stack([
        torch.randperm(args.per_cluster, generator=gen)[:args.num_instances]
        for _ in range(len(ids))
    ])
    idx = (ids[:, None] + args.clusters * members).flatten()
    samples = [ReIDDataSample(metainfo=dict(sample_idx=int(i))) for i in idx]
    images = torch.rand(
        args.batch_size, 3, args.height, args.width, generator=gen) * 255
    return dict(inputs=images, data_samples=samples)


def train_step(model, optim_wrapper, data, timers: Timers) -> dict:
    """mmengine's ``BaseModel.train_step``, timed by phase."""
    timers.spent = {}
    cpu = time.process_time()
    start = time.perf_counter()
    with optim_wrapper.optim_context(model):
        data = model.data_preprocessor(data, True)
        losses = model._run_forward(data, mode='loss')
    parsed, _ = model.parse_losses(losses)
    t_forward = time.perf_counter()
    optim_wrapper.backward(parsed)
    t_backward = time.perf_counter()
    optim_wrapper.step()
    optim_wrapper.zero_grad()
    end = time.perf_counter()
    return dict(
        step=end - start,
        cpu=time.process_time() - cpu,
        forward=t_forward - start,
        backward=t_backward - t_forward,
        optimizer=end - t_backward,
        **timers.spent)


def conv_backward_flop(grad_out_shape,
                       x_shape,
                       w_shape,
                       *args,
                       out_shape=None,
                       **kwargs) -> int:
    """Flops of ``aten.convolution_backward``: the forward convolution's
    flops for each of grad_input and grad_weight that is computed.

    torch's own formula counts grad_weight of a grouped convolution as if
    it were dense (C times too much for a depthwise one, which made
    MobileNetV2's backward look 20x its forward); for groups=1 both agree.
    """
    from torch.utils.flop_counter import conv_flop_count
    transposed, output_mask = args[4], args[7]
    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def count_flops(fn) -> dict:
    """Flops of ``fn()`` (forward and backward), total and by part."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(
        display=False,
        custom_mapping={
            torch.ops.aten.convolution_backward: conv_backward_flop
        })
    with counter:
        fn()
    by_module = counter.get_flop_counts()
    total = counter.get_total_flops()
    aggregator = sum(
        sum(ops.values()) for name, ops in by_module.items()
        if name.endswith('.aggregator'))
    return dict(total=total, aggregator=aggregator)


def time_adam(model, optim_cfg: dict, steps: int) -> dict:
    """ms per Adam step over the model's trainable parameters, default
    implementation against ``fused=True`` (random gradients)."""
    import torch
    params = [p for p in model.parameters() if p.requires_grad]
    grads = [torch.randn_like(p) for p in params]
    out = {}
    for name, extra in (('default', {}), ('fused', dict(fused=True))):
        kwargs = {k: v for k, v in optim_cfg.items() if k != 'type'}
        clones = [p.detach().clone().requires_grad_() for p in params]
        for p, g in zip(clones, grads):
            p.grad = g
        opt = getattr(torch.optim, optim_cfg['type'])(clones, **kwargs,
                                                      **extra)
        opt.step()
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            opt.step()
            times.append(time.perf_counter() - start)
        out[name] = 1000 * statistics.median(times)
    out['params'] = sum(p.numel() for p in params)
    return out


def backbone_worker(args, backbone: str) -> dict:
    import torch

    from mmreid_rcl.utils import register_all_modules
    register_all_modules()
    threads = torch.get_num_threads()
    variants = ('baseline', ) if args.malloc_run else VARIANTS
    peak = measure_peak(args.peak_size, args.peak_time)
    print(
        f'  {backbone}: torch.mm peak {peak["gflops"]:.0f} GFLOPS '
        f'(best {peak["best_gflops"]:.0f}), malloc {args.malloc}',
        file=sys.stderr,
        flush=True)
    built, timers = {}, {}
    for variant in variants:
        model, optim_wrapper, path = build(args, backbone, variant)
        t = Timers()
        t.wrap(model.head.memory, 'update', 'memory_update')
        if getattr(model, 'aggregator', None) is not None:
            t.wrap(model, 'set_loss', 'saa_loss')
            t.wrap(model, 'hard_positives', 'hps')
        built[variant], timers[variant] = (model, optim_wrapper, path), t
    gen = torch.Generator().manual_seed(args.seed)
    flops = {}
    for variant in variants:
        model, optim_wrapper, _ = built[variant]
        data = make_batch(args, gen)
        flops[variant] = count_flops(
            lambda: train_step(model, optim_wrapper, data, timers[variant]))
        for _ in range(max(0, args.warmup - 1)):
            train_step(model, optim_wrapper, make_batch(args, gen),
                       timers[variant])
    print(f'  {backbone}: warm-up done', file=sys.stderr, flush=True)
    records = {v: [] for v in variants}
    # The comparison run only needs the baseline's median.
    steps = min(args.steps, 2) if args.malloc_run else args.steps
    for i in range(steps):
        # ABBA: each variant runs first and second equally often.
        order = variants if i % 2 == 0 else variants[::-1]
        for variant in order:
            model, optim_wrapper, _ = built[variant]
            data = make_batch(args, gen)
            records[variant].append(
                train_step(model, optim_wrapper, data, timers[variant]))
        print(
            f'  {backbone}: step {i + 1} of {steps}: ' +
            ', '.join(f'{v} {records[v][-1]["step"]:.2f} s (CPU '
                      f'{records[v][-1]["cpu"]:.2f} s)' for v in variants),
            file=sys.stderr,
            flush=True)
    if args.profile and not args.malloc_run:
        profile_steps(args, backbone, built, timers, gen)
    out = dict(
        backbone=backbone,
        input=f'{args.height}x{args.width}',
        batch=args.batch_size,
        num_instances=args.num_instances,
        clusters=args.clusters,
        threads=threads,
        malloc=args.malloc,
        peak=peak,
        variants={})
    for variant in variants:
        model, optim_wrapper, path = built[variant]
        keys = sorted({k for r in records[variant] for k in r})
        median = {
            k: statistics.median(r.get(k, 0.0) for r in records[variant])
            for k in keys
        }
        out['variants'][variant] = dict(
            config=osp.relpath(path, REPO),
            channels_last=bool(model.channels_last),
            seconds=median,
            steps=[r['step'] for r in records[variant]],
            images_per_second=args.batch_size / median['step'],
            flops=flops[variant],
            gflops=flops[variant]['total'] / median['step'] / 1e9)
    if args.optimizer_steps > 0 and not args.malloc_run:
        from mmengine.config import Config
        model, _, path = built['rcl']
        optim_cfg = Config.fromfile(path).optim_wrapper.optimizer
        out['adam'] = time_adam(model, dict(optim_cfg), args.optimizer_steps)
    return out


def profile_steps(args, backbone, built, timers, gen) -> None:
    """torch.profiler tables (by operator) of one step of each variant."""
    from torch.profiler import ProfilerActivity, profile
    os.makedirs(args.profile, exist_ok=True)
    for variant in VARIANTS:
        model, optim_wrapper, _ = built[variant]
        data = make_batch(args, gen)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            train_step(model, optim_wrapper, data, timers[variant])
        table = prof.key_averages().table(
            sort_by='self_cpu_time_total', row_limit=40)
        path = osp.join(args.profile, f'{backbone}_{variant}.txt')
        with open(path, 'w') as f:
            f.write(table)
        print(f'  profile written to {path}', file=sys.stderr)


# -- rows -------------------------------------------------------------------
def rows_of(result: dict) -> list:
    name = NAMES[result['backbone']]
    ids = result['batch'] // result['num_instances']
    shape = (f'batch {result["batch"]} = {ids} x {result["num_instances"]}'
             f', {result["input"]}')
    base = result['variants']['baseline']
    rcl = result['variants']['rcl']
    peak = result['peak']
    rows = []
    for label, v in (('cluster contrast', base), ('RCL', rcl)):
        s = v['seconds']
        parts = [
            f'forward {s["forward"]:.2f} s (memory update '
            f'{1000 * s["memory_update"]:.0f} ms'
        ]
        if 'saa_loss' in s:
            parts[0] += f', SAA {1000 * s["saa_loss"]:.0f} ms'
        if 'hps' in s:
            parts[0] += f', HPS {1000 * s["hps"]:.0f} ms'
        parts[0] += ')'
        parts += [
            f'backward {s["backward"]:.2f} s',
            f'optimizer {s["optimizer"]:.2f} s'
        ]
        layout = 'channels-last' if v['channels_last'] else 'NCHW'
        layout += f', malloc {result["malloc"]}'
        rows.append(
            dict(
                stage='training',
                figure=f'{name} {label} step ({shape}): '
                f'{v["images_per_second"]:.1f} img/s, {s["step"]:.2f} s',
                comparison=', '.join(parts) + f'; {layout}; random '
                'images, no data loading',
                target='',
                met=None))
    extra = 100 * (rcl['seconds']['step'] / base['seconds']['step'] - 1)
    extra_cpu = 100 * (rcl['seconds']['cpu'] / base['seconds']['cpu'] - 1)
    extra_flops = 100 * (rcl['flops']['total'] / base['flops']['total'] - 1)
    rows.append(
        dict(
            stage='RCL extra cost',
            figure=f'{name}: {extra:+.1f} % per iteration',
            comparison=f'{rcl["seconds"]["step"]:.2f} s vs '
            f'{base["seconds"]["step"]:.2f} s (medians of '
            f'{len(base["steps"])} interleaved steps); CPU time '
            f'{extra_cpu:+.1f} %; flops {extra_flops:+.1f} %',
            target=f'<= {TARGET_EXTRA:.0f} %',
            met=bool(extra <= TARGET_EXTRA)))
    fractions = ', '.join(f'{label} {v["gflops"]:.0f} GFLOPS = '
                          f'{100 * v["gflops"] / peak["gflops"]:.0f} %'
                          for label, v in (('cluster contrast', base), ('RCL',
                                                                        rcl)))
    rows.append(
        dict(
            stage='peak fraction',
            figure=f'{name} step: {fractions} of peak',
            comparison=f'peak {peak["gflops"]:.0f} GFLOPS (torch.mm '
            f'{peak["size"]}^3 fp32, median; best {peak["best_gflops"]:.0f})'
            f'; {base["flops"]["total"] / 1e12:.2f} / '
            f'{rcl["flops"]["total"] / 1e12:.2f} TFLOP a step '
            '(FlopCounterMode, forward + backward)',
            target='',
            met=None))
    if 'adam' in result:
        adam = result['adam']
        saved = (adam['default'] - adam['fused']) / 1000
        rows.append(
            dict(
                stage='training',
                figure=f'{name} Adam step over RCL\'s '
                f'{adam["params"] / 1e6:.1f} M parameters: '
                f'{adam["default"]:.0f} ms, fused=True '
                f'{adam["fused"]:.0f} ms',
                comparison=f'fused would save '
                f'{100 * saved / rcl["seconds"]["step"]:.1f} % of the RCL '
                'step',
                target='',
                met=None))
    return rows


def malloc_rows(kept: dict, glibc: dict) -> list:
    """The baseline step with freed memory kept, against glibc defaults."""
    name = NAMES[kept['backbone']]
    new = kept['variants']['baseline']['seconds']['step']
    old = glibc['variants']['baseline']['seconds']['step']
    return [
        dict(
            stage='training',
            figure=f'{name} cluster contrast step with freed memory kept '
            f'(mallopt): {kept["batch"] / new:.1f} img/s, {new:.2f} s',
            comparison=f'{100 * (new / old - 1):+.1f} % time vs glibc '
            f'malloc defaults ({old:.2f} s, separate process)',
            target='',
            met=None)
    ]


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.worker:
        start_worker(args, 'bench_training')
        write_result(args.result, backbone_worker(args, args.worker))
        return
    rows = []
    for backbone in args.backbones:
        print(f'{NAMES[backbone]}:', flush=True)
        result = run_worker_process(__file__, without_json(argv),
                                    ['--worker', backbone])
        rows += rows_of(result)
        if args.malloc == 'glibc' and not args.no_malloc_compare:
            kept = run_worker_process(
                __file__, without_json(argv),
                ['--worker', backbone, '--malloc', 'keep', '--malloc-run'])
            rows += malloc_rows(kept, result)
    print_rows(rows, args.json)


if __name__ == '__main__':
    main()
