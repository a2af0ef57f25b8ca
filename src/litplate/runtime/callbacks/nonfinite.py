"""Stops training at the first NaN or inf loss, before it reaches the weights."""

from typing import Any

import lightning as L
from torch import Tensor

from litplate.runtime.errors import NonFiniteLossError


class NonFiniteLossGuard(L.Callback):
    """Checks the loss in ``on_before_backward``: no gradient of it is computed, no step is taken.

    The weights therefore stay finite and the checkpoints on disk stay the last good ones (the
    checkpoint writer, ``AtomicCheckpointIO``, also refuses non-finite weights, which catches an
    overflow in the gradients of a finite loss). The check reads one scalar per step, a device sync
    on GPU. The message lists the module's ``loss_terms`` (data loss, l1, l2) when it has them.
    """

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor) -> None:
        if bool(loss.isfinite()):
            return
        terms: dict[str, Any] = getattr(pl_module, "loss_terms", {}) or {}
        shown = ", ".join(f"{name}={float(value):.6g}" for name, value in terms.items())
        raise NonFiniteLossError(
            f"non-finite loss at epoch {trainer.current_epoch}, step {trainer.global_step} "
            f"(batch {trainer.fit_loop.epoch_loop.batch_idx}): loss={float(loss):.6g}"
            + (f", {shown}" if shown else "")
            + "; stopped before the weights were updated, checkpoints on disk are from before"
        )
