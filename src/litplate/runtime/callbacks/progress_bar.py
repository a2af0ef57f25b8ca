"""Lightning's progress bars, showing logged values without reading them back on every step."""

import time
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
        self._values: dict[str, float] = {}  # ``show``, as last read
        self._items: dict[str, Any] = {}  # what the bar shows, made after the last read
        self._stale = True  # a read since ``_items`` was made

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """Lightning's items and ``show``, read on logged steps (and outside training); between
        them the same dict again, which costs nothing."""
        if not trainer.training or self._after_logged_step(trainer):
            self._read(trainer)
        if self._stale:
            self._items = {**super().get_metrics(trainer, pl_module), **self._values}
            self._stale = False
        return self._items

    def _read(self, trainer: L.Trainer) -> None:
        logged = trainer.callback_metrics
        self._values = {name: float(logged[name]) for name in self.show if name in logged}
        self._stale = True
        self._read_at = trainer.global_step

    _read_at: int | None = None  # the optimizer step after which the values were last read

    def _after_logged_step(self, trainer: L.Trainer) -> bool:
        """Whether the step just taken is one the loggers write and its values are not read yet
        (with gradient accumulation, the next batches share its global step until the next step)."""
        step = trainer.global_step
        return step % (trainer.log_every_n_steps or 1) == 0 and step != self._read_at


class RichProgressBar(_ShowsLoggedValues, callbacks.RichProgressBar):
    """Rich's bar, its training row updated no more often than it is drawn.

    Rich draws ``refresh_rate`` times a second from its own thread; Lightning updates the row's
    count and values on every batch, ~30 us of locking and bookkeeping (0.2 ms on a step whose
    values are read) that no one sees when a batch takes milliseconds. Here the update runs when
    1/``refresh_rate`` s has passed since the last one, on an epoch's last batch, and before
    validation or the epoch's end when fit stops inside an epoch, so the row never ends behind. A
    logged step's values are read on that step (the only steps they may be read on) and shown by
    the next update.
    """

    _next_update = 0.0  # time.monotonic() from which the next batch updates the row
    _behind: int | None = None  # the batch_idx of the latest batch the row does not show yet

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.monotonic()
        last = batch_idx + 1 == trainer.num_training_batches
        if now < self._next_update and not last:
            self._behind = batch_idx
            if self.is_enabled and self._after_logged_step(trainer):
                self._read(trainer)  # now, the only step it may be read on; shown by the next update
            return
        self._next_update = now + 1 / max(self.refresh_rate, 1)
        self._behind = None
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def _catch_up(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The row's update for the latest batch, if it was skipped (Lightning's reads only the index)."""
        if self._behind is not None:
            behind, self._behind = self._behind, None
            super().on_train_batch_end(trainer, pl_module, None, None, behind)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._catch_up(trainer, pl_module)
        super().on_validation_start(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._catch_up(trainer, pl_module)
        super().on_train_epoch_end(trainer, pl_module)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Lightning's, the new row drawn by rich's thread within 1/``refresh_rate`` s.

        Lightning resets the row with rich's ``Progress.reset``, which redraws the whole display at
        once, in the training thread: 0.4-0.7 ms an epoch here, more than a small model's step.
        For this call the display's draw only asks rich's thread to draw (Lightning's own
        ``soft_refresh``); the reset itself, and so the row's elapsed time and speed, are unchanged.
        """
        progress = self.progress
        if progress is None:
            super().on_train_epoch_start(trainer, pl_module)
            return
        progress.refresh = progress.soft_refresh  # type: ignore[method-assign]  # this object, this call
        try:
            super().on_train_epoch_start(trainer, pl_module)
        finally:
            del progress.refresh


class TQDMProgressBar(_ShowsLoggedValues, callbacks.TQDMProgressBar):
    pass
