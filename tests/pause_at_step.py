"""Test-only callback: hold a real run at a chosen step until the test has signalled it.

Added with ``+callbacks.pause._target_=pause_at_step.PauseAtStep +callbacks.pause.step=N
+callbacks.pause.out=DIR`` (tests put this folder on PYTHONPATH). After optimizer step N each rank
writes ``DIR/paused-rank<R>`` and waits for ``DIR/go``; the test sends its signals in between, so
they arrive at a known step however fast or slow the machine is. Python runs a signal handler in
the main thread as soon as the wait's sleep is interrupted, so the run's own handlers have seen
the signal before this callback returns. It keeps no state: checkpoints are the same without it.
"""

import time
from pathlib import Path
from typing import Any

import lightning as L


class PauseAtStep(L.Callback):
    def __init__(self, step: int, out: str, timeout_s: float = 300.0) -> None:
        self.step = step
        self.out = Path(out)
        self.timeout_s = timeout_s

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if trainer.global_step != self.step:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / f"paused-rank{trainer.global_rank}").touch()
        deadline = time.monotonic() + self.timeout_s
        while not (self.out / "go").exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"nobody wrote {self.out / 'go'} within {self.timeout_s} s")
            time.sleep(0.01)
