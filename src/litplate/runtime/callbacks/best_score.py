"""The best value of a validation metric so far, logged as ``<metric>_best`` and kept in checkpoints."""

import math
from typing import Any

import lightning as L

from litplate.runtime.callbacks import best_score_args


class BestScore(L.Callback):
    """Tracks the best ``monitor`` value over the whole run, resumed runs included.

    What a sweep optimizes (``optimized_metric``, by default ``${best.metric}_best``): the best
    validation score of a run, not its last. The value is read after each validation, once the
    module's and the other callbacks' values are in (``on_validation_end``), and logged at the end
    of the training epoch, the first hook after it that may log. Sanity-check batches do not count.
    """

    @best_score_args.BestScore.check
    def __init__(self, monitor: str, mode: str = "max") -> None:
        self.monitor = monitor
        self.mode = mode
        self.best: float | None = None

    @property
    def name(self) -> str:
        return f"{self.monitor}_best"

    def logged_metrics(self, pl_module: L.LightningModule) -> dict[str, str]:
        return {self.name: self.mode}

    def _better(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return self.best is None or (value > self.best if self.mode == "max" else value < self.best)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None:
            return
        value = float(value)  # once per validation, not per step
        if self._better(value):
            self.best = value

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.best is not None:
            pl_module.log(self.name, self.best, prog_bar=False)

    def state_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("monitor") == self.monitor:
            self.best = state_dict.get("best")
