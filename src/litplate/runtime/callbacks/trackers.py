"""What an experiment tracker gets besides metrics and hyperparameters: the resolved run config as a
file, and the path of the best checkpoint once fitting ends.

Metrics reach every logger through Lightning, and ``train.py`` sends each logger the flattened config
as hyperparameters; but a tracker's run page is where people look for a run later, often on another
machine, so it should also hold the whole config as one file (to rerun or diff) and say which
checkpoint to load. TensorBoard and CSV live in the run directory next to ``run_metadata.yaml`` and
``checkpoints/``, so they need neither. The trackers this knows:

- MLflow (``MLFlowLogger``): artifact ``run_config.yaml``, tag ``best_checkpoint``.
- Weights & Biases (``WandbLogger``): ``run_config.yaml`` in the run's files, summary key
  ``best_checkpoint``.

Only rank 0 writes, and only in ``setup`` and ``on_fit_end``: nothing runs per step, and
``trackers_of`` adds the callback only to a run that has one of these loggers. ``runs_finished``
closes the W&B run when ``train()`` is done with it: Lightning leaves that to the process's exit, so
the next job of a sweep, which runs in the same process, would log into the previous job's run.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import yaml
from lightning.pytorch.loggers import Logger, MLFlowLogger, WandbLogger

from litplate.runtime.checkpointing import best_checkpoint

CONFIG_FILE = "run_config.yaml"
BEST_CHECKPOINT_KEY = "best_checkpoint"
TRACKERS = (MLFlowLogger, WandbLogger)


class TrackerRecords(L.Callback):
    """Sends the run config (once, at the first ``setup``: a test-only run gets it too) and, after
    fitting, the best checkpoint by ``best_metric`` to the run's MLflow and W&B loggers."""

    def __init__(self, config: dict[str, Any], best_metric: str) -> None:
        self.config = config
        self.best_metric = best_metric
        self._config_sent = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._config_sent or not trainer.is_global_zero:
            return
        text = yaml.safe_dump(self.config, sort_keys=False)
        for logger in trainer.loggers:
            if isinstance(logger, MLFlowLogger):
                logger.experiment.log_text(logger.run_id, text, CONFIG_FILE)
            elif isinstance(logger, WandbLogger):
                run = logger.experiment
                path = Path(run.dir) / CONFIG_FILE  # run.dir is the run's files/: uploaded as they are
                path.write_text(text)
                run.save(str(path), base_path=run.dir, policy="now")
        self._config_sent = True

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        path = best_checkpoint(trainer, self.best_metric)
        if path is None:  # checkpointing off, or no validation to rank by
            return
        path = str(Path(path).resolve())  # a tracker is read from anywhere, not from this cwd
        for logger in trainer.loggers:
            if isinstance(logger, MLFlowLogger):
                logger.experiment.set_tag(logger.run_id, BEST_CHECKPOINT_KEY, path)
            elif isinstance(logger, WandbLogger):
                logger.experiment.summary[BEST_CHECKPOINT_KEY] = path


def trackers_of(loggers: Iterable[Logger], config: dict[str, Any], best_metric: str) -> list[L.Callback]:
    """``[TrackerRecords(...)]`` when a logger is a tracker it knows, else ``[]``: a run without
    one does not call its hooks at all."""
    if any(isinstance(logger, TRACKERS) for logger in loggers):
        return [TrackerRecords(config, best_metric)]
    return []


@contextmanager
def runs_finished(loggers: Iterable[Logger]) -> Iterator[None]:
    """Finish this process's W&B run on the way out (exit code 1 if an exception leaves), so the
    next ``train()`` in the process, e.g. a sweep's next job, starts a run of its own. MLflow runs
    need nothing: ``MLFlowLogger.finalize`` ends them, and each logger starts its own."""
    succeeded = False
    try:
        yield
        succeeded = True
    finally:
        if any(isinstance(logger, WandbLogger) for logger in loggers):
            import wandb

            if wandb.run is not None:  # only where one was started: rank 0
                wandb.run.finish(exit_code=0 if succeeded else 1)
