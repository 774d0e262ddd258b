"""Evaluate the initial model, so that a run reports where it started."""
import torch
from mmengine.hooks import Hook

from mmreid_rcl.registry import HOOKS


@HOOKS.register_module()
class EvaluateBeforeTrainHook(Hook):
    """Evaluate on the validation set once, before the first epoch.

    Unsupervised re-ID is judged by how far training moves the metrics from
    the initial (e.g. ImageNet) features. This runs the validation
    dataloader and evaluator directly, without the validation hooks, so
    that the initial model is neither checkpointed nor counted as a "best"
    model; the metrics are logged and written to the scalar logs at step 0
    under ``val_init/``. Skipped when a run resumes.
    """

    priority = 'LOW'

    def before_train(self, runner) -> None:
        loop = runner.val_loop
        if runner.iter > 0 or loop is None:
            return
        runner.logger.info('Evaluating the model before training')
        model = runner.model
        model.eval()
        with torch.no_grad():
            for data_batch in loop.dataloader:
                outputs = model.val_step(data_batch)
                loop.evaluator.process(
                    data_samples=outputs, data_batch=data_batch)
        metrics = loop.evaluator.evaluate(len(loop.dataloader.dataset))
        model.train()
        text = '  '.join(f'{k}: {v:.4f}' if isinstance(v, float) else
                         f'{k}: {v}' for k, v in metrics.items())
        runner.logger.info(f'Epoch(val) [0] before training  {text}')
        runner.visualizer.add_scalars(
            {f'val_init/{k}': v
             for k, v in metrics.items()}, step=0)
        self.metrics = metrics
