"""Features of a whole data set, as the re-clustering extracts them."""
import torch
import torch.nn as nn
from mmengine.dist import all_gather, get_dist_info, is_main_process
from mmengine.model import is_model_wrapper
from mmengine.utils import ProgressBar
from torch.utils.data import DataLoader


@torch.no_grad()
def extract_dataset_features(model: nn.Module,
                             dataloader: DataLoader,
                             num_samples: int,
                             progress: bool = True) -> torch.Tensor:
    """Features of a whole dataset, sharded over ranks and gathered.

    Every rank extracts its share (the dataloader's sampler shards), then
    the (sample_idx, feature) pairs of all ranks are gathered and put in
    ``sample_idx`` order, so every rank returns the same (N, D) tensor.

    Args:
        model (nn.Module): the model (wrappers are unwrapped); its
            ``data_preprocessor`` and ``forward(mode='tensor')`` are used.
        dataloader (DataLoader): test-pipeline loader over the dataset.
        num_samples (int): N, the dataset length.
        progress (bool): show a progress bar on the main process.

    Returns:
        Tensor: (N, D) float32 features on the CPU.
    """
    model = model.module if is_model_wrapper(model) else model
    was_training = model.training
    model.eval()
    indices, feats = [], []
    show = progress and is_main_process()
    bar = ProgressBar(len(dataloader)) if show else None
    for data in dataloader:
        data = model.data_preprocessor(data, False)
        out = model(data['inputs'], mode='tensor')
        feats.append(out.float().cpu())
        indices.append(
            torch.as_tensor([s.sample_idx for s in data['data_samples']]))
        if bar is not None:
            bar.update()
    if show:
        print()
    model.train(was_training)
    idx = torch.cat(indices)
    feats = torch.cat(feats)
    _, world_size = get_dist_info()
    if world_size > 1:
        idx, feats = _gather_padded(idx, feats)
    result = torch.zeros(num_samples, feats.size(1))
    seen = torch.zeros(num_samples, dtype=torch.bool)
    result[idx] = feats
    seen[idx] = True
    if not bool(seen.all()):
        missing = torch.nonzero(~seen).flatten()[:5].tolist()
        raise RuntimeError(f'feature extraction missed samples {missing}...: '
                           'the cluster dataloader must cover the whole '
                           'train split (DefaultSampler, shuffle=False)')
    return result


def _gather_padded(idx: torch.Tensor, feats: torch.Tensor):
    """all_gather of per-rank tensors whose lengths may differ."""
    device = 'cuda' if torch.cuda.is_available() and \
        torch.distributed.get_backend() == 'nccl' else 'cpu'
    size = torch.tensor([idx.numel()], device=device)
    sizes = [int(s) for s in all_gather(size)]
    longest = max(sizes)
    pad = longest - idx.numel()
    idx_p = torch.cat([idx, idx.new_full((pad, ), -1)]).to(device)
    feats_p = torch.cat([feats, feats.new_zeros(pad, feats.size(1))])
    gathered_idx = all_gather(idx_p)
    gathered_feats = all_gather(feats_p.to(device))
    idx = torch.cat([g[:n].cpu() for g, n in zip(gathered_idx, sizes)])
    feats = torch.cat([g[:n].cpu() for g, n in zip(gathered_feats, sizes)])
    return idx, feats
