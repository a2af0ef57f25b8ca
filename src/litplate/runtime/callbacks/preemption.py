"""SIGTERM, SIGINT, SLURM's requeue signal: finish the current step, save a checkpoint, say where, exit."""

import signal
import sys
import threading
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from litplate.runtime import slurm
from litplate.runtime.callbacks import preemption_args

EXIT_CODES = {name: 128 + signal.Signals[name] for name in ("SIGTERM", "SIGINT", "SIGUSR1", "SIGUSR2")}


class PreemptionCheckpoint(L.Callback):
    """Saves ``<dirpath>/<filename>.ckpt`` when the run is told to stop.

    Lightning's own SIGTERM handler only sets a flag; its loops raise ``SIGTERMException`` at the
    next batch boundary, after the optimizer step, and call ``on_exception``: the state saved there
    is consistent. Ctrl-C would instead raise ``KeyboardInterrupt`` wherever Python happens to be,
    possibly halfway through an optimizer step, so a first SIGINT is routed through that same
    SIGTERM path; a second SIGINT aborts at once without saving.

    In a SLURM task, ``requeue_signal`` (SIGUSR1: ``sbatch --signal=USR1@90`` sends it to every task
    before the time limit) takes the same path, then requeues the job (``scontrol requeue``) and
    exits 138; the requeued job, in the same run directory, resumes from the newest checkpoint
    without being told (``slurm.checkpoint_after_requeue``). The handler only notes the signal.
    Every rank must stop after the same step, and SLURM signals the tasks one by one, so at the end
    of each optimizer step the ranks agree on whether any of them got it (one tiny all-reduce per
    step, only in multi-task SLURM runs; none once they have agreed) and then all raise Lightning's
    stop flag together. They stop after the first step that is followed by neither validation (a
    run resumed there counts its logging steps one off) nor an epoch's end, and is not the run's
    last. Lightning's own handler for the signal is off
    (``upstream/lightning_21406_requeue_in_signal_handler.py``).
    """

    @preemption_args.PreemptionCheckpoint.check
    def __init__(
        self, dirpath: str, filename: str = "interrupted", requeue_signal: str | None = "SIGUSR1"
    ) -> None:
        self.dirpath = dirpath
        self.filename = filename
        self.requeue_signal = requeue_signal
        self.signal_name: str | None = None
        self.saved_path: str | None = None
        self._handles_requeue = False  # in a SLURM task, from fit start on
        self._requeue_asked = False  # set by the signal handler, on this rank
        self._agreed = False  # every rank knows that one of them was asked
        self._stopping = False  # Lightning's stop flag is up: the run ends after this batch

    @property
    def ckpt_path(self) -> str:
        return str(Path(self.dirpath) / f"{self.filename}.ckpt")

    # ---- SLURM's requeue signal ------------------------------------------------------------------

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._requeue_asked = self._agreed = self._stopping = False
        self._previous_requeue_handler = None
        self._handles_requeue = (
            self.requeue_signal is not None
            and slurm.in_slurm_task()
            and threading.current_thread() is threading.main_thread()
        )
        if self._handles_requeue:
            signum = signal.Signals[self.requeue_signal]
            self._previous_requeue_handler = signal.getsignal(signum)
            signal.signal(signum, self._on_requeue_signal)

    def _on_requeue_signal(self, signum: int, frame: Any) -> None:
        self._requeue_asked = True  # runs between any two bytecodes: nothing else here

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self._handles_requeue:  # only the requeue agreement at the batch's end reads it
            self._step_before_batch = trainer.global_step

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self._handles_requeue or self._stopping:
            return
        # The same answer on every rank, so the agreement below is a collective all of them join.
        stepped = trainer.global_step != self._step_before_batch
        epoch_goes_on = batch_idx + 1 < trainer.num_training_batches and not trainer.should_stop
        run_goes_on = trainer.max_steps < 0 or trainer.global_step < trainer.max_steps
        if not (stepped and epoch_goes_on and run_goes_on):
            return
        self._agreed = self._agreed or self._any_rank_asked(trainer)
        if self._agreed:
            self.signal_name = self.requeue_signal
            self._stopping = True
            _set_lightning_stop_flag(trainer, True)  # raised at the end of this batch, on every rank

    def _any_rank_asked(self, trainer: L.Trainer) -> bool:
        asked = self._requeue_asked
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = torch.tensor([int(asked)], dtype=torch.int32, device=trainer.strategy.root_device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            asked = bool(flag.item())
        return asked

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._stopping:  # validation follows this step: validate whole and stop after the next one
            self._stopping = False
            _set_lightning_stop_flag(trainer, False)

    # ---- SIGTERM and Ctrl-C ----------------------------------------------------------------------

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
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        previous = getattr(self, "_previous_sigint", None)
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
            self._previous_sigint = None
        previous = getattr(self, "_previous_requeue_handler", None)
        if previous is not None and self.requeue_signal is not None:
            signal.signal(signal.Signals[self.requeue_signal], previous)
            self._previous_requeue_handler = None

    # ---- saving ----------------------------------------------------------------------------------

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, SIGTERMException):
            return  # a crash or a second Ctrl-C: the state may be half-updated, keep the last good files
        self.signal_name = self.signal_name or "SIGTERM"
        trainer.save_checkpoint(self.ckpt_path, weights_only=False)  # full state, to resume
        self.saved_path = self.ckpt_path
        if not trainer.is_global_zero:
            self._restore_handlers()
            return
        at = f"{self.signal_name} at epoch {trainer.current_epoch}, step {trainer.global_step}"
        where = f"{at}: saved {self.ckpt_path}"
        resume = f"Resume with: python train.py ckpt_path={self.ckpt_path}"
        if self._stopping:  # the requeue signal: after the save, so the requeued job finds the file
            requeued, outcome = slurm.requeue()
            message = f"{where}; {outcome}" + (", which resumes from it" if requeued else f". {resume}")
        else:
            message = f"{where}. {resume}"
        print(message, file=sys.stderr, flush=True)
        self._restore_handlers()

    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signal_name or "SIGTERM", 1)


def _set_lightning_stop_flag(trainer: L.Trainer, value: bool) -> None:
    """Lightning's "stop at the next batch boundary" flag, which its SIGTERM handler raises.

    Its loops check it after each training batch (and each validation batch, and each epoch) and
    raise ``SIGTERMException``, which reaches ``on_exception``. Lightning has no public way to set
    it: this is the attribute its handler writes and ``Trainer.received_sigterm`` reads.
    """
    trainer._signal_connector.received_sigterm = value
