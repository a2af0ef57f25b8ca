"""Lightning's LearningRateMonitor, stepping aside with one warning when the run has no logger."""

from typing import Any

import lightning as L
from lightning.pytorch import callbacks
from lightning.pytorch.utilities import rank_zero_info


class LearningRateMonitor(callbacks.LearningRateMonitor):
    """Lightning's own raises when fit starts without a logger; ``logger=null`` should still train."""

    _disabled = False

    def on_train_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        self._disabled = not trainer.loggers
        if self._disabled:
            rank_zero_info("LearningRateMonitor: the run has no logger, so learning rates are not logged")
            return
        super().on_train_start(trainer, *args, **kwargs)

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if not self._disabled:
            super().on_train_batch_start(trainer, *args, **kwargs)

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if not self._disabled:
            super().on_train_epoch_start(trainer, *args, **kwargs)
