"""Random draws of the data pipeline that depend on seed, epoch and position.

Transforms (flip, pad-crop, erasing, colour casts) draw from the process-wide
RNGs of NumPy, ``random`` and torch. In data-loader workers those streams
depend on which worker got which batch, and nothing of them is saved in a
checkpoint, so a run resumed inside an epoch (or one with another number of
workers) would see other augmentations than the uninterrupted run.

A sampler that wants reproducible draws yields :class:`DrawIndex` values: a
dataset index that also carries the seed of that sample's draws, derived
from the sampler's seed, the epoch and the sample's position in the epoch's
stream (:func:`draw_seeds`). The dataset then runs the pipeline inside
:func:`seeded_global_rngs`, so every random draw of a transform is a
function of (seed, epoch, position) alone: the same in every run, with any
number of workers, and after a resume.
"""
import contextlib
import random
from typing import Iterator

import numpy as np
import torch

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


class DrawIndex(int):
    """A dataset index carrying the seed of the sample's random draws.

    It is an ``int`` everywhere an index is expected (list indexing, the
    data loader's fetchers, pickling to workers) and adds ``draw_seed``.

    Args:
        index (int): The dataset index.
        draw_seed (int): Seed of the draws, in ``[0, 2**63)``.
    """

    def __new__(cls, index: int, draw_seed: int) -> 'DrawIndex':
        obj = super().__new__(cls, index)
        obj.draw_seed = int(draw_seed)
        return obj

    def __reduce__(self):
        return DrawIndex, (int(self), self.draw_seed)

    def __repr__(self) -> str:
        return f'DrawIndex({int(self)}, draw_seed={self.draw_seed})'


def draw_seeds(seed: int, epoch: int, positions: np.ndarray) -> np.ndarray:
    """Seeds of the draws at ``positions`` of an epoch's sample stream.

    Distinct (seed, epoch, position) triples give well-mixed, practically
    distinct seeds (SplitMix64 over a per-epoch base from NumPy's
    ``SeedSequence``).

    Args:
        seed (int): The sampler's base seed (non-negative).
        epoch (int): The epoch (non-negative).
        positions (np.ndarray): Integer positions in the epoch's stream.

    Returns:
        np.ndarray: int64 seeds in ``[0, 2**63)``, shaped like
        ``positions``.
    """
    base = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(
        1, dtype=np.uint64)[0]
    z = np.asarray(positions, dtype=np.uint64) * _GOLDEN + base
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(1)).astype(np.int64)


@contextlib.contextmanager
def seeded_global_rngs(draw_seed: int) -> Iterator[None]:
    """Seed NumPy's, ``random``'s and torch's global RNGs for a block.

    The previous states are restored afterwards, so that the process's own
    streams (for example the model's dropout in the main process when the
    loader has no workers) do not depend on how many samples were loaded.

    Args:
        draw_seed (int): Seed in ``[0, 2**63)``.
    """
    np_state = np.random.get_state()
    py_state = random.getstate()
    torch_state = torch.random.get_rng_state()
    np.random.seed([draw_seed & 0xFFFFFFFF, draw_seed >> 32])
    random.seed(draw_seed)
    torch.random.manual_seed(draw_seed)
    try:
        yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
        torch.random.set_rng_state(torch_state)
