"""Stops training at a NaN or inf loss, without reading the loss back on every step."""

from typing import Any

import lightning as L
from torch import Tensor

from litplate.runtime.callbacks import nonfinite_args
from litplate.runtime.errors import NonFiniteLossError


class NonFiniteLossGuard(L.Callback):
    """Raises ``NonFiniteLossError`` (one line: epoch, steps, loss terms) when a loss is NaN or inf.

    Each step adds the loss to a running sum on the device (one small kernel): a sum stays finite
    only while every loss is. Reading it back waits for the device, so it is read every
    ``check_every_n_steps`` optimizer steps (default: the steps the loggers write anyway,
    ``trainer.log_every_n_steps``) and at the end of every epoch, before checkpoints are written,
    always before that step's backward pass. With ``check_every_n_steps=1`` every step is checked
    and the run stops before the first non-finite loss reaches the weights, at one sync a step.

    Checkpoints stay the last good ones either way: the epoch-end check runs before they are
    written, and the checkpoint writer (``AtomicCheckpointIO``) refuses non-finite weights. The
    message lists the module's ``loss_terms`` (data loss, l1, l2) of the batch it stopped at.
    """

    @nonfinite_args.NonFiniteLossGuard.check
    def __init__(self, check_every_n_steps: int | None = None) -> None:
        self.check_every_n_steps = check_every_n_steps
        self._sum: Tensor | None = None
        self._since = 0  # the first step the running sum covers

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._every = self.check_every_n_steps or trainer.log_every_n_steps or 1
        self._sum, self._since = None, trainer.global_step

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor) -> None:
        loss = loss.detach()
        self._sum = loss.clone() if self._sum is None else self._sum.add_(loss)
        if (trainer.global_step + 1) % self._every == 0:
            self._check(trainer, pl_module, loss)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check(trainer, pl_module, None)

    def _check(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor | None) -> None:
        if self._sum is None:
            return
        finite = bool(self._sum.isfinite())  # the one read back: on checked steps only
        since, self._sum, self._since = self._since, None, trainer.global_step + 1
        if finite:
            return
        step = trainer.global_step
        steps = f"step {step}" if since >= step else f"steps {since}-{step}"
        terms: dict[str, Any] = getattr(pl_module, "loss_terms", {}) or {}
        values = ({"loss": loss} if loss is not None else {}) | terms
        shown = ", ".join(f"{name}={float(value):.6g}" for name, value in values.items())
        raise NonFiniteLossError(
            f"non-finite loss at epoch {trainer.current_epoch}, {steps} "
            f"(batch {trainer.fit_loop.epoch_loop.batch_idx}): {shown}; stopped before "
            + ("the weights were updated" if since >= step else "this step (the guard checks every "
               f"{self._every} steps: callbacks.nonfinite_guard.check_every_n_steps=1 checks each)")
            + ", checkpoints on disk are from before"
        )  # fmt: skip
