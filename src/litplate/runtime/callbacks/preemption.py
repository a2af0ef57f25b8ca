"""SIGTERM / SIGINT: finish the current step, save a checkpoint, exit with a message saying where."""

import signal
import sys
import threading
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

from litplate.runtime.errors import ArgumentError

EXIT_CODES = {"SIGTERM": 128 + signal.SIGTERM, "SIGINT": 128 + signal.SIGINT}


class PreemptionCheckpoint(L.Callback):
    """Saves ``<dirpath>/<filename>.ckpt`` when the run is told to stop.

    Lightning's own SIGTERM handler only sets a flag; its loops raise ``SIGTERMException`` at the
    next batch boundary, after the optimizer step, and call ``on_exception``: the state saved there
    is consistent. Ctrl-C would instead raise ``KeyboardInterrupt`` wherever Python happens to be,
    possibly halfway through an optimizer step, so a first SIGINT is routed through that same
    SIGTERM path; a second SIGINT aborts at once without saving.

    On SLURM with ``auto_requeue`` Lightning also handles the requeue signal (SIGUSR1): it writes
    ``hpc_ckpt_N.ckpt`` in the run directory and requeues the job, which resumes from it because
    the run directory name comes from the job id (``run_stamp``). This callback does not touch
    SIGUSR1.
    """

    def __init__(self, dirpath: str, filename: str = "interrupted") -> None:
        if not (isinstance(filename, str) and filename):
            raise ArgumentError.of("filename", filename, "a non-empty file name")
        self.dirpath = dirpath
        self.filename = filename
        self.signal_name: str | None = None
        self.saved_path: str | None = None

    @property
    def ckpt_path(self) -> str:
        return str(Path(self.dirpath) / f"{self.filename}.ckpt")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Not on_fit_start: Lightning registers its SIGTERM handler after that hook.
        self.signal_name = self.saved_path = None
        if threading.current_thread() is not threading.main_thread():
            return
        self._previous_sigint = signal.getsignal(signal.SIGINT)
        lightning_sigterm = signal.getsignal(signal.SIGTERM)
        if not callable(lightning_sigterm):
            return  # Lightning registered nothing (not the main thread): keep Python's defaults

        def on_sigterm(signum: int, frame: Any) -> None:
            self.signal_name = self.signal_name or "SIGTERM"
            lightning_sigterm(signum, frame)

        def on_sigint(signum: int, frame: Any) -> None:
            self.signal_name = "SIGINT"
            signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C aborts
            print("\nCtrl-C: stopping after this step to save a checkpoint (again to abort)", file=sys.stderr)
            lightning_sigterm(signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)  # Lightning puts its originals back at teardown
        signal.signal(signal.SIGINT, on_sigint)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        previous = getattr(self, "_previous_sigint", None)
        if previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous)
            self._previous_sigint = None

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, SIGTERMException):
            return  # a crash or a second Ctrl-C: the state may be half-updated, keep the last good files
        self.signal_name = self.signal_name or "SIGTERM"
        trainer.save_checkpoint(self.ckpt_path, weights_only=False)  # full state, to resume
        self.saved_path = self.ckpt_path
        if trainer.is_global_zero:
            print(
                f"{self.signal_name} at epoch {trainer.current_epoch}, step {trainer.global_step}: saved "
                f"{self.ckpt_path}. Resume with: python train.py ckpt_path={self.ckpt_path}",
                file=sys.stderr,
                flush=True,
            )

    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signal_name or "SIGTERM", 1)
