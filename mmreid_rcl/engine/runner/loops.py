"""Training loop that can resume in the middle of an epoch."""
from mmengine.runner import EpochBasedTrainLoop

from mmreid_rcl.registry import LOOPS


@LOOPS.register_module()
class ReIDTrainLoop(EpochBasedTrainLoop):
    """Epoch-based loop that continues a resumed epoch where it stopped.

    mmengine's epoch loop restarts a resumed epoch from its first batch, so a
    checkpoint taken after iteration i of an epoch would train the first i
    batches twice. Here the sampler is told to skip the batches already
    trained (``set_start_iter``, which skips indices without loading any
    image), so the resumed run sees exactly the batches the uninterrupted
    run would have seen.
    """

    def run_epoch(self) -> None:
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        per_epoch = len(self.dataloader)
        start = self._iter - self._epoch * per_epoch
        sampler = self.dataloader.sampler
        if start > 0:
            if not hasattr(sampler, 'set_start_iter'):
                raise TypeError(
                    f'resuming inside epoch {self._epoch + 1} needs a '
                    'sampler that can skip batches (set_start_iter); '
                    f'{type(sampler).__name__} cannot')
            sampler.set_start_iter(start)
        try:
            for idx, data_batch in enumerate(self.dataloader, start=start):
                self.run_iter(idx, data_batch)
        finally:
            if start > 0:
                sampler.set_start_iter(0)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
