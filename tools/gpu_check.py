"""Check a GPU machine: short AMP training runs, extraction, ONNX parity.

    python tools/dataset_converters/resize_reid_dataset.py \\
        ../shared/data/cuhk03_labeled data/cuhk03_256x128 \\
        --size 256 128 --quality 75
    python tools/gpu_check.py data/cuhk03_256x128
    python tools/gpu_check.py --device cpu --tiny     # CPU smoke test

On one GPU, from the MobileNetV2 configs of the CPU recipe at 256x128:

1. cluster contrast and RCL, 2 epochs of ``--iters`` iterations each
   (batch 128 = 32 pseudo identities x 4), mixed precision (``--amp``,
   bfloat16 by default), re-clustering before each epoch and an evaluation
   at the end; training images/s of the step alone and of the loop (data
   loading included), re-clustering time, peak memory; the memory's
   prototypes must stay float32 and finite and the losses finite;
2. feature extraction of the trained RCL model: images/s with decoding
   (``ReIDInferencer``) and of the network alone (float32 and bfloat16);
3. an ONNX round trip: export, onnxruntime on the CPU, the largest cosine
   distance to the PyTorch features (on the CPU, and on the GPU where
   convolutions may use TF32).

DATA_ROOT holds a CUHK03 copy in the Market-1501 layout. The MobileNetV2
ImageNet weights are read from ``--weights`` (the converted checkpoint) or
converted from ``../shared/weights/mobilenetv2_imagenet.pt`` (or under
``$MMREID_RCL_SHARED``). Designed to finish within 6 minutes on one recent
GPU. Everything is written under ``--work-dir`` (a new time-stamped
folder), with a ``summary.json``.

``--tiny`` runs the same steps on a small generated data set (Market-1501
layout, 64x32, batch 8, 2 iterations an epoch); with ``--device cpu`` it is
the smoke test of this script (mixed precision is off on the CPU:
mmengine's ``AmpOptimWrapper`` needs a GPU).

Exit status: 0 when every check passes, 1 when one fails, 2 without a CUDA
device (unless ``--device cpu``).
"""
import os

# See tools/train.py: sleeping OpenMP threads, set before torch is imported.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os.path as osp  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = dict(
    cluster_contrast=osp.join(REPO, 'configs', 'cluster_contrast',
                              'cluster_contrast_mobilenetv2_cpu_cuhk03.py'),
    rcl=osp.join(REPO, 'configs', 'rcl', 'rcl_mobilenetv2_cpu_cuhk03.py'))
NAMES = dict(cluster_contrast='cluster contrast', rcl='RCL')
DEFAULT_WEIGHTS = osp.join(REPO, 'checkpoints',
                           'mobilenetv2_imagenet_mmreid.pth')
SOURCE_WEIGHTS = osp.join(
    os.environ.get('MMREID_RCL_SHARED', osp.join(osp.dirname(REPO),
                                                 'shared')), 'weights',
    'mobilenetv2_imagenet.pt')
#: ONNX against PyTorch on the CPU, float32 both: rounding only.
CPU_PARITY = 1e-5
#: Against the GPU, whose convolutions may run in TF32 (10-bit mantissa).
GPU_PARITY = 1e-3
AMP_DTYPES = dict(bf16='bfloat16', fp16='float16')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Check a GPU machine: AMP training, extraction, ONNX')
    parser.add_argument(
        'data_root',
        nargs='?',
        help='CUHK03 copy in the Market-1501 layout (with --tiny: a '
        'Market-1501-layout folder; generated when left out)')
    parser.add_argument('--device', choices=['cuda', 'cpu'], default='cuda')
    parser.add_argument(
        '--tiny',
        action='store_true',
        help='a tiny data set and model run (the smoke test)')
    parser.add_argument('--work-dir', default='work_dirs/gpu_check')
    parser.add_argument(
        '--iters', type=int, help='iterations an epoch (default 40; 2 tiny)')
    parser.add_argument('--epochs', type=int, default=2)
    parser.add_argument(
        '--batch-size', type=int, help='train batch (default 128; 8 tiny)')
    parser.add_argument('--num-instances', type=int, default=4)
    parser.add_argument(
        '--amp',
        choices=['bf16', 'fp16', 'off'],
        default='bf16',
        help='mixed precision of the training step (off on the CPU)')
    parser.add_argument(
        '--num-workers',
        type=int,
        help='data-loader workers (default min(8, CPUs); 0 tiny)')
    parser.add_argument(
        '--weights',
        default=DEFAULT_WEIGHTS,
        help='MobileNetV2 ImageNet weights converted by '
        'tools/model_converters/mobilenetv2_to_mmreid.py')
    parser.add_argument(
        '--random-init',
        action='store_true',
        help='no ImageNet weights (a randomly initialised MobileNetV2 '
        'gives nearly equal features: expect too few clusters)')
    parser.add_argument(
        '--extract-images',
        type=int,
        default=4096,
        help='gallery images for the extraction speed')
    parser.add_argument(
        '--onnx-images',
        type=int,
        default=256,
        help='images for the ONNX parity and speed')
    parser.add_argument(
        '--verbose', action='store_true', help="mmengine's INFO log")
    args = parser.parse_args(argv)
    if args.data_root is None and not args.tiny:
        parser.error('DATA_ROOT is required (except with --tiny)')
    defaults = dict(iters=(40, 2), batch_size=(128, 8))
    for key, (full, tiny) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, tiny if args.tiny else full)
    if args.num_workers is None:
        args.num_workers = 0 if args.tiny else min(8, os.cpu_count() or 1)
    if args.batch_size % args.num_instances:
        parser.error(f'--batch-size {args.batch_size} must be a multiple of '
                     f'--num-instances {args.num_instances}')
    for key in ('iters', 'epochs', 'extract_images', 'onnx_images'):
        if getattr(args, key) < 1:
            parser.error(f'--{key.replace("_", "-")} must be >= 1')
    return args


def no_cuda_message(torch) -> str:
    built = torch.version.cuda or 'no CUDA (a CPU-only build)'
    return (f'gpu_check: no CUDA device is available (torch '
            f'{torch.__version__} built with {built}; '
            'torch.cuda.is_available() is False, CUDA_VISIBLE_DEVICES='
            f'{os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")!r}). Run '
            'it on a GPU machine, or pass --device cpu --tiny for the CPU '
            'smoke test.')


# -- configs ------------------------------------------------------------
def _set_resize(pipeline, size, padding):
    for transform in pipeline:
        if transform['type'] == 'Resize':
            transform['scale'] = (size[1], size[0])  # (W, H)
        if transform['type'] == 'RandomPadCrop':
            transform['padding'] = padding


def build_config(kind, args, data_root, work_dir, weights):
    """The MobileNetV2 config of ``kind`` with the check's overrides."""
    from mmengine.config import Config

    from mmreid_rcl.utils.config_utils import merge_cfg_options
    cfg = Config.fromfile(CONFIGS[kind])
    size = (64, 32) if args.tiny else (256, 128)
    loaders = ('train_dataloader', 'cluster_dataloader', 'val_dataloader',
               'test_dataloader')
    for key in loaders:
        loader = cfg[key]
        _set_resize(loader.dataset.pipeline, size, 4 if args.tiny else 10)
        loader.num_workers = args.num_workers
        loader.persistent_workers = args.num_workers > 0
        if args.tiny:
            loader.dataset.type = 'Market1501Dataset'
        if key != 'train_dataloader':
            loader.batch_size = 256
    merge_cfg_options(cfg, dict(data_root=data_root))
    cfg.train_dataloader.batch_size = args.batch_size
    cfg.train_dataloader.sampler.batch_size = args.batch_size
    cfg.train_dataloader.sampler.num_instances = args.num_instances
    cfg.train_dataloader.sampler.num_iters = args.iters
    cfg.train_cfg.max_epochs = args.epochs
    cfg.train_cfg.val_interval = args.epochs
    cfg.param_scheduler = []
    generator = dict(
        type='DBSCANLabelGenerator', eps=0.6, min_samples=4, k1=30, k2=6)
    if args.tiny:
        generator.update(min_samples=2, k1=6, k2=2)
    cfg.custom_hooks = [
        dict(
            type='ReClusterHook',
            label_generator=generator,
            cluster_after_train=False)
    ]
    if weights is None:
        cfg.model.backbone.init_cfg = None
    else:
        cfg.model.backbone.init_cfg = dict(
            type='Pretrained', checkpoint=weights)
    if args.amp != 'off' and args.device == 'cuda':
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.dtype = AMP_DTYPES[args.amp]
    cfg.default_hooks.logger.interval = max(1, args.iters // 2)
    cfg.default_hooks.checkpoint = dict(
        type='ReIDCheckpointHook', interval=args.epochs, max_keep_ckpts=1)
    cfg.visualizer = dict(
        type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
    cfg.work_dir = work_dir
    cfg.log_level = 'INFO' if args.verbose else 'WARNING'
    cfg.randomness = dict(seed=0, deterministic=False)
    return cfg


def resolve_weights(args, out_dir):
    """The converted MobileNetV2 checkpoint, converting the shared source
    when needed; None for random weights."""
    if args.random_init:
        return None
    if osp.isfile(args.weights):
        return args.weights
    if osp.isfile(SOURCE_WEIGHTS):
        import torch

        from mmreid_rcl.models.backbones import (
            convert_mobilenetv2_state_dict, load_mobilenetv2_source)
        path = osp.join(out_dir, 'mobilenetv2_imagenet_mmreid.pth')
        state = convert_mobilenetv2_state_dict(
            load_mobilenetv2_source(SOURCE_WEIGHTS))
        torch.save({'state_dict': state, 'meta': {}}, path)
        print(f'converted {SOURCE_WEIGHTS} to {path}')
        return path
    raise SystemExit(
        f'gpu_check: no MobileNetV2 ImageNet weights: {args.weights} and '
        f'{SOURCE_WEIGHTS} are missing. Convert them with '
        'tools/model_converters/mobilenetv2_to_mmreid.py, pass --weights, '
        'or --random-init (clustering may then find too few clusters)')


# -- measuring ------------------------------------------------------------
def make_meter_hook(sync):
    """A hook timing the training steps and keeping the run's figures."""
    from mmengine.hooks import Hook

    class TrainMeterHook(Hook):
        # After ReClusterHook: its timings of the epoch are logged by then.
        priority = 'LOWEST'

        def __init__(self):
            self.step_time = self.loop_time = 0.0
            self.images = 0
            self.clusterings = []
            self.metrics = {}
            self.bad_losses = []
            self._iter_in_epoch = 0
            self._last_end = self._start = None

        def before_train_epoch(self, runner):
            hub = runner.message_hub
            figures = {}
            for key in ('time_extract', 'time_cluster', 'clusters',
                        'outliers'):
                try:
                    figures[key] = float(
                        hub.get_scalar(f'train/{key}').current())
                except KeyError:
                    pass
            self.clusterings.append(figures)
            self._iter_in_epoch = 0
            self._last_end = None

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            sync()
            self._start = time.perf_counter()

        def after_train_iter(self,
                             runner,
                             batch_idx,
                             data_batch=None,
                             outputs=None):
            sync()
            now = time.perf_counter()
            # The first step of an epoch warms up (workers, kernels).
            if self._iter_in_epoch > 0:
                self.step_time += now - self._start
                self.loop_time += now - self._last_end
                self.images += len(data_batch['inputs'])
            self._iter_in_epoch += 1
            self._last_end = now
            for key, value in (outputs or {}).items():
                value = float(value.detach() if hasattr(value, 'detach')
                              else value)
                if key.startswith('loss') and not math.isfinite(value):
                    self.bad_losses.append(
                        f'{key}={value} at iteration {runner.iter}')

        def after_val_epoch(self, runner, metrics=None):
            self.metrics = dict(metrics or {})

    return TrainMeterHook()


def train_run(kind, args, data_root, out_dir, weights, device):
    """One short training run; returns its figures and checks."""
    import torch
    from mmengine.runner import Runner

    from mmreid_rcl.utils import register_all_modules
    work_dir = osp.join(out_dir, kind)
    cfg = build_config(kind, args, data_root, work_dir, weights)
    register_all_modules()
    cuda = device == 'cuda'
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    runner = Runner.from_cfg(cfg)
    meter = make_meter_hook(sync)
    runner.register_hook(meter)
    start = time.perf_counter()
    runner.train()
    wall = time.perf_counter() - start
    model = runner.model.module if hasattr(runner.model,
                                           'module') else runner.model
    protos = model.head.memory.prototypes
    checks = dict(
        prototypes_float32=protos.dtype == torch.float32,
        prototypes_finite=bool(torch.isfinite(protos).all()),
        losses_finite=not meter.bad_losses)
    ckpt = osp.join(work_dir, f'epoch_{args.epochs}.pth')
    result = dict(
        name=NAMES[kind],
        optim_wrapper=type(runner.optim_wrapper).__name__,
        amp_dtype=str(getattr(runner.optim_wrapper, 'cast_dtype', None)),
        wall_s=wall,
        step_images_per_s=meter.images / max(meter.step_time, 1e-9),
        loop_images_per_s=meter.images / max(meter.loop_time, 1e-9),
        clusterings=meter.clusterings,
        metrics={k: float(v)
                 for k, v in meter.metrics.items()},
        bad_losses=meter.bad_losses,
        checks=checks,
        checkpoint=ckpt,
        config=cfg,
        peak_memory_gib=(torch.cuda.max_memory_allocated() /
                         2**30) if cuda else None)
    # The runner's loops refer back to it: collect it now, so that its
    # persistent data-loader workers end before the next run starts.
    del runner, model, protos
    gc.collect()
    return result


def extraction(args, run, data_root, out_dir, device):
    """Extraction speed, and the ONNX round trip, of a trained run."""
    import numpy as np
    import torch

    from mmreid_rcl.apis import (ONNXReIDInferencer, ReIDInferencer,
                                 export_onnx, resolve_image_inputs)
    cfg, ckpt = run['config'], run['checkpoint']
    gallery = resolve_image_inputs(osp.join(data_root, 'bounding_box_test'))
    images = gallery[:args.extract_images]
    cuda = device == 'cuda'
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    inferencer = ReIDInferencer(
        cfg,
        ckpt,
        device=device,
        batch_size=256,
        num_workers=args.num_workers)
    inferencer.extract(images[:256], progress=False)  # warm-up
    sync()
    start = time.perf_counter()
    feats = inferencer.extract(images, progress=False)
    sync()
    result = dict(
        images=len(images),
        pipeline_images_per_s=len(images) / (time.perf_counter() - start))

    # The network alone, on a batch already on the device.
    height, width = (64, 32) if args.tiny else (256, 128)
    batch = torch.randn(256 if not args.tiny else 16, 3, height, width,
                        device=device)
    model = inferencer.model
    modes = [('float32', None)]
    if cuda and args.amp != 'off':
        modes.append((AMP_DTYPES[args.amp], getattr(torch,
                                                    AMP_DTYPES[args.amp])))
    for name, dtype in modes:
        with torch.inference_mode(), torch.autocast(
                device_type=device, dtype=dtype, enabled=dtype is not None):
            for _ in range(3):
                model(batch, mode='tensor')
            sync()
            start = time.perf_counter()
            repeats = 10 if cuda else 2
            for _ in range(repeats):
                model(batch, mode='tensor')
            sync()
        result[f'network_images_per_s_{name}'] = (
            repeats * len(batch) / (time.perf_counter() - start))

    # ONNX: export, onnxruntime on the CPU, parity.
    onnx_file = osp.join(out_dir, 'model.onnx')
    start = time.perf_counter()
    export_onnx(cfg, ckpt, onnx_file, verify=False)
    result['onnx_export_s'] = time.perf_counter() - start
    subset = images[:args.onnx_images]
    onnx_inferencer = ONNXReIDInferencer(
        cfg, onnx_file, batch_size=64, num_workers=args.num_workers)
    onnx_inferencer.extract(subset[:64], progress=False)  # warm-up
    start = time.perf_counter()
    onnx_feats = onnx_inferencer.extract(subset, progress=False)
    result['onnx_cpu_images_per_s'] = len(subset) / (time.perf_counter() -
                                                     start)

    def max_cosine_distance(a, b):
        return float(np.max(1.0 - (a.astype(np.float64) * b).sum(1)))

    num_cpu = min(64, len(subset))
    if cuda:
        result['parity_gpu'] = max_cosine_distance(onnx_feats,
                                                   feats[:len(subset)])
        cpu_inferencer = ReIDInferencer(
            cfg, ckpt, batch_size=64, num_workers=args.num_workers)
        cpu_feats = cpu_inferencer.extract(subset[:num_cpu], progress=False)
    else:
        cpu_feats = feats[:num_cpu]
    result['parity_cpu'] = max_cosine_distance(onnx_feats[:num_cpu],
                                               cpu_feats)
    result['checks'] = dict(onnx_parity_cpu=result['parity_cpu'] < CPU_PARITY)
    if cuda:
        result['checks']['onnx_parity_gpu'] = result['parity_gpu'] < \
            GPU_PARITY
    return result


# -- report ----------------------------------------------------------------
def describe_run(run) -> str:
    clusterings = [c for c in run['clusterings'] if c]
    extract = sum(c.get('time_extract', 0) for c in clusterings)
    cluster = sum(c.get('time_cluster', 0) for c in clusterings)
    clusters = ', '.join(str(int(c.get('clusters', 0))) for c in clusterings)
    metrics = run['metrics']
    lines = [
        f'{run["name"]} ({run["optim_wrapper"]}, autocast '
        f'{run["amp_dtype"]}): {run["wall_s"]:.1f} s',
        f'  training: {run["step_images_per_s"]:.0f} images/s in the step, '
        f'{run["loop_images_per_s"]:.0f} images/s with data loading',
        f'  re-clustering: {len(clusterings)} x, {extract:.1f} s extracting '
        f'and {cluster:.1f} s clustering in all; clusters {clusters}',
    ]
    if metrics:
        lines.append(f'  evaluation: mAP {metrics.get("reid/mAP", 0):.2f}, '
                     f'rank-1 {metrics.get("reid/rank1", 0):.2f}')
    if run['peak_memory_gib'] is not None:
        lines.append(f'  peak GPU memory {run["peak_memory_gib"]:.2f} GiB')
    lines.append('  prototypes float32 and finite, losses finite: ' +
                 ('yes' if all(run['checks'].values()) else
                  f'NO {run["checks"]} {run["bad_losses"][:3]}'))
    return '\n'.join(lines)


def describe_extraction(ext, device) -> str:
    lines = [
        f'extraction ({device}, {ext["images"]} gallery images, batch 256): '
        f'{ext["pipeline_images_per_s"]:.0f} images/s with decoding',
        '  the network alone: ' + ', '.join(
            f'{ext[k]:.0f} images/s in {k.rsplit("_", 1)[-1]}'
            for k in ext if k.startswith('network_images_per_s')),
        f'ONNX: export {ext["onnx_export_s"]:.1f} s, onnxruntime on the '
        f'CPU {ext["onnx_cpu_images_per_s"]:.0f} images/s',
        f'  max cosine distance to PyTorch: {ext["parity_cpu"]:.2e} on the '
        f'CPU (limit {CPU_PARITY:.0e})',
    ]
    if 'parity_gpu' in ext:
        lines[-1] += (f', {ext["parity_gpu"]:.2e} on the GPU (limit '
                      f'{GPU_PARITY:.0e}; TF32 convolutions)')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.device == 'cpu':
        # Before CUDA is initialised: mmengine then runs on the CPU too.
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    import torch
    if args.device == 'cuda' and not torch.cuda.is_available():
        print(no_cuda_message(torch), file=sys.stderr)
        return 2
    start = time.perf_counter()
    out_dir = osp.abspath(
        osp.join(args.work_dir, time.strftime('%Y%m%d_%H%M%S')))
    os.makedirs(out_dir, exist_ok=False)
    data_root = args.data_root
    if data_root is None:
        from mmreid_rcl.datasets.synthetic import generate_synthetic_reid
        data_root = osp.join(out_dir, 'data')
        generate_synthetic_reid(
            data_root,
            num_train_ids=12,
            num_test_ids=6,
            num_cameras=4,
            images_per_id_per_camera=2,
            num_distractors=4,
            height=64,
            width=32,
            seed=0,
            progress=False)
    if not osp.isdir(osp.join(data_root, 'bounding_box_test')):
        raise SystemExit(f'gpu_check: {data_root} is not a Market-1501-'
                         'layout folder (bounding_box_train/, query/, '
                         'bounding_box_test/)')
    if args.device == 'cuda':
        props = torch.cuda.get_device_properties(0)
        print(f'device: {props.name}, {props.total_memory / 2**30:.0f} GiB, '
              f'torch {torch.__version__}, CUDA {torch.version.cuda}, '
              f'bf16 {torch.cuda.is_bf16_supported()}, TF32 convolutions '
              f'{torch.backends.cudnn.allow_tf32}')
    else:
        print(f'device: CPU ({torch.get_num_threads()} threads), torch '
              f'{torch.__version__}; mixed precision off')
    weights = resolve_weights(args, out_dir)
    print(f'data: {data_root}; work dir: {out_dir}; MobileNetV2 '
          f'{"random init" if weights is None else weights}', flush=True)

    runs = {}
    for kind in ('cluster_contrast', 'rcl'):
        print(f'training {NAMES[kind]}: {args.epochs} epochs of '
              f'{args.iters} iterations, batch {args.batch_size}', flush=True)
        runs[kind] = train_run(kind, args, data_root, out_dir, weights,
                               args.device)
        print(describe_run(runs[kind]), flush=True)
    print('extraction and ONNX round trip', flush=True)
    ext = extraction(args, runs['rcl'], data_root, out_dir, args.device)
    print(describe_extraction(ext, args.device))

    checks = {}
    for kind, run in runs.items():
        checks.update({f'{kind}.{k}': v for k, v in run['checks'].items()})
    checks.update(ext['checks'])
    failed = [k for k, ok in checks.items() if not ok]
    total = time.perf_counter() - start
    summary = dict(
        device=args.device,
        tiny=args.tiny,
        amp=args.amp,
        wall_s=total,
        runs={
            k: {
                key: value
                for key, value in run.items() if key != 'config'
            }
            for k, run in runs.items()
        },
        extraction=ext,
        failed=failed)
    with open(osp.join(out_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=1, default=str)
    print(f'total {total:.0f} s; summary in '
          f'{osp.join(out_dir, "summary.json")}')
    if failed:
        print(f'gpu_check: FAILED: {", ".join(failed)}', file=sys.stderr)
        return 1
    print('gpu_check: all checks passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
