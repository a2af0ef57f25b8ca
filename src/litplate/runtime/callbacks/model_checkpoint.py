"""Lightning's ModelCheckpoint with less work per step: the base of the template's checkpoint callbacks."""

from typing import Any

import lightning as L
from lightning.pytorch import callbacks

from litplate.runtime.callbacks import model_checkpoint_args


class ModelCheckpoint(callbacks.ModelCheckpoint):
    """Lightning's ModelCheckpoint: the same files, state and state key, minus two per-step costs.

    - Lightning runs every callback hook inside a profiler action named after ``state_key``, which
      ModelCheckpoint rebuilds from its settings at each call (about 1 us, six calls a step). The
      settings do not change once it is built, so the key is built once.
    - With neither a step nor a time trigger (``every_n_train_steps=0``, no ``train_time_interval``:
      every checkpoint of the default config) its batch-end check can never save, so it is skipped.

    Its counts and mode are checked by ``model_checkpoint_args`` (also before torch loads).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **model_checkpoint_args.ModelCheckpoint.checked(kwargs))

    @property
    def state_key(self) -> str:
        if "_fixed_state_key" not in self.__dict__:
            self._fixed_state_key = super().state_key
        return self._fixed_state_key

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._every_n_train_steps or self._train_time_interval is not None:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
