"""Evaluate the initial model, so that a run reports where it started."""
from mmengine.hooks import Hook

from mmreid_rcl.registry import HOOKS


@HOOKS.register_module()
class EvaluateBeforeTrainHook(Hook):
    """Run the validation loop once before the first training epoch.

    Unsupervised re-ID is judged by how far training moves the metrics from
    the initial (e.g. ImageNet) features; this logs that starting point as
    ``Epoch(val) [0]``. It is skipped when a run resumes.
    """

    priority = 'LOW'

    def before_train(self, runner) -> None:
        if runner.iter > 0 or runner.val_loop is None:
            return
        runner.logger.info('Evaluating the model before training')
        runner.val_loop.run()
