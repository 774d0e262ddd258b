"""Process-wide random streams re-derived from the seed at every step."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook

from mmreid_rcl.datasets.samplers.seeded_draws import draw_seeds
from mmreid_rcl.registry import HOOKS

# Keeps these streams apart from the sampler's (seed, epoch) streams.
_STREAM = 1 << 20


@HOOKS.register_module()
class IterationSeedHook(Hook):
    """Seed NumPy's, ``random``'s and torch's global RNGs before every step.

    The model's own random draws (dropout, random masks) come from the
    process-wide RNGs of the main process. Their state is not in a
    checkpoint, and the data loader consumes torch draws whenever it starts
    an iterator, so a run resumed inside an epoch would continue with other
    draws than the uninterrupted run. Re-deriving the three streams from
    (run seed, iteration) before every training step makes them the same
    in both, and in every run with the same seed.

    The data pipeline's draws are seeded per sample by the identity sampler
    (:mod:`mmreid_rcl.datasets.samplers.seeded_draws`); this hook covers
    the rest. Without a run seed (``randomness=dict(seed=None)``) it does
    nothing.
    """

    priority = 'VERY_HIGH'

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        seed = runner.seed
        if seed is None:
            return
        step = np.array([runner.iter], dtype=np.int64)
        draw_seed = int(draw_seeds(int(seed), _STREAM, step)[0])
        # Deliberately not restored: the step's draws continue from here.
        np.random.seed([draw_seed & 0xFFFFFFFF, draw_seed >> 32])
        random.seed(draw_seed)
        torch.manual_seed(draw_seed)
