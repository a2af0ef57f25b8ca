"""Test-only callback: prints the garbage collector's state at the first training step.

Added with ``+callbacks.gc_probe._target_=gc_probe.GcProbe`` (tests put this folder on PYTHONPATH).
"""

import gc
from typing import Any

import lightning as L


class GcProbe(L.Callback):
    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step == 1:
            print(f"gc-probe enabled={gc.isenabled()} frozen={gc.get_freeze_count()}", flush=True)
