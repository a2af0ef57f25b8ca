"""Lightning's progress bars, showing logged values without reading them back on every step."""

from collections.abc import Sequence
from typing import Any

import lightning as L
from lightning.pytorch import callbacks


class _ShowsLoggedValues:
    """Shows ``show`` (default: ``train/loss``), read on logged steps only, next to Lightning's items.

    A training value logged with ``prog_bar=True`` is converted to a Python float by Lightning at
    the end of *every* batch until the epoch ends: on a GPU, a host-device sync each step for a
    number that changes only on the steps the loggers write (``trainer.log_every_n_steps``). So the
    module logs ``train/loss`` without ``prog_bar``, and the bar reads it here, on those steps, and
    shows it until the next one.
    """

    def __init__(self, *args: Any, show: Sequence[str] = ("train/loss",), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.show = list(show)
        self._shown: dict[str, Any] = {}

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """Lightning's items and ``show``, read on logged steps (and outside training); between
        them the same dict again, which costs nothing."""
        every = trainer.log_every_n_steps or 1
        if self._shown and trainer.training and trainer.global_step % every != 0:
            return self._shown
        logged = trainer.callback_metrics
        shown = {name: float(logged[name]) for name in self.show if name in logged}
        self._shown = {**super().get_metrics(trainer, pl_module), **shown}
        return self._shown


class RichProgressBar(_ShowsLoggedValues, callbacks.RichProgressBar):
    pass


class TQDMProgressBar(_ShowsLoggedValues, callbacks.TQDMProgressBar):
    pass
