"""ModelCheckpoint for ``last.ckpt``: at every epoch's end, and at the step where fit stops inside one."""

from typing import Any

import lightning as L

from litplate.runtime.callbacks.model_checkpoint import ModelCheckpoint
from litplate.runtime.stopping import stops_inside_epoch


class LastCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint (``conf/callbacks/last_checkpoint.yaml``: no monitor, one file),
    plus a save at the batch where fit stops inside an epoch (``trainer.max_steps``, ``max_time``).

    Lightning would save there at the epoch-end hook that it still runs, with the epoch marked as
    processed and without the training loader's position: a run continued from that file with a
    larger limit skips the rest of the epoch. Saved at the batch's end instead, the file is a
    mid-epoch checkpoint (data position, partial epoch means, loop counters), and continuing it is
    exact. The epoch-end hook then finds this global step saved and skips it. Checkpoint callbacks
    run after Lightning's ``Timer``, so a ``max_time`` stop is already decided here.
    """

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self._save_on_train_epoch_end and stops_inside_epoch(trainer):
            super().on_train_epoch_end(trainer, pl_module)  # the epoch-end save, made at this step
