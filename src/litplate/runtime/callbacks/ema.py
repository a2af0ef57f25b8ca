"""Exponential moving average (EMA) of a model's weights and batch statistics."""

from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn
from torch import Tensor, nn

from litplate.runtime.callbacks import ema_args
from litplate.runtime.checkpointing import EMA_STATE_KEY, first_misfit


class EMA(L.Callback):
    """Keeps ``ema <- d * ema + (1 - d) * w`` after every optimizer step, and evaluates it.

    ``d`` is the decay: the newest weights count ``1 - d`` (0.001 for ``decay=0.999``). This is the
    reverse of PyTorch BatchNorm's ``momentum`` m (``running <- (1 - m) * running + m * x``), so m = 1 - d.

    When: after each *optimizer* step, detected as ``trainer.global_step`` changing, so gradient
    accumulation does not multiply the updates. The EMA starts as a copy of the weights when fit
    starts and follows them (plain copies) for the first ``start_step`` optimizer steps; after that
    every ``update_every_n_steps``-th step averages with ``decay ** update_every_n_steps`` (the same
    horizon in steps). With ``warmup`` the decay of update t (t = updates made before it, from 0) is
    ``min(decay ** n, 1 - (1 + t) ** (-2/3))``: the first update copies, and early weights, far from
    the optimum, do not linger in the average for 1 / (1 - decay) steps.

    What: trainable parameters and floating-point buffers (BatchNorm running mean/var) are averaged,
    in float32 even when the model trains in bf16/fp16; integer buffers (``num_batches_tracked``) and
    frozen parameters are the live ones. ``buffers="copy"`` takes all buffers from the live model.

    Cost: tensors are paired by name once, when fit starts; an update is one fused
    ``torch._foreach_lerp_`` over those lists with a host-side weight: no autograd, no device sync.

    Evaluation: the callback computes no loss and no metric itself. With ``validate_ema`` each
    validation batch also goes through the module's own evaluation code with the EMA weights
    (``TaskModule.evaluation_step(batch, split, weights)``, the live model untouched), and every
    validation metric is logged a second time with an ``_ema`` suffix (``val/loss_ema``,
    ``val/acc_ema``, ...). A module without that method is validated with its live weights only,
    with one warning. With ``test_ema`` testing swaps the EMA weights in and says so. Under DDP the
    weights are identical on every rank; BatchNorm statistics are too with ``sync_batchnorm``
    (conf/trainer/ddp.yaml sets it), but without it each rank's come from its own batches, and
    ``sync_buffers`` averages the EMA's over ranks before it is validated.

    Checkpoints keep the live weights in ``state_dict`` (training resumes from them) and the EMA,
    with its update counter, under ``callbacks["EMA"]`` (see ``checkpointing.weights_from``).
    """

    @ema_args.EMA.check
    def __init__(
        self,
        decay: float = 0.999,
        warmup: bool = True,
        update_every_n_steps: int = 1,
        start_step: int = 0,
        buffers: Literal["average", "copy"] = "average",
        validate_ema: bool = True,
        test_ema: bool = True,
        sync_buffers: bool = False,
    ) -> None:
        self.decay = decay
        self.warmup = warmup
        self.update_every_n_steps = update_every_n_steps
        self.start_step = start_step
        self.buffers = buffers
        self.validate_ema = validate_ema
        self.test_ema = test_ema
        self.sync_buffers = sync_buffers
        self.updates = 0  # averaging updates made: the t of the warmup
        self._module: nn.Module | None = None
        self._names: list[str] = []  # averaged entries of module.state_dict(), in order
        self._ema: list[Tensor] = []
        self._live: list[Tensor] = []
        self._staging: list[Tensor] = []  # float32 copies of low-precision live tensors, if any
        self._buffer_index: list[int] = []  # positions of averaged buffers in the lists
        self._step = 0  # trainer.global_step at the last optimizer step seen
        self._loaded: dict[str, Any] | None = None  # state from a checkpoint, until used
        self._eval_tensors: dict[str, Tensor] = {}
        self._live_backup: dict[str, Tensor] | None = None

    @property
    def state_key(self) -> str:
        return EMA_STATE_KEY

    @staticmethod
    def _evaluates(pl_module: L.LightningModule) -> bool:
        return all(
            hasattr(pl_module, f) for f in ("evaluation_step", "log_evaluation", "evaluation_directions")
        )

    def logged_metrics(self, pl_module: L.LightningModule) -> dict[str, str | None]:
        """``val/<name>_ema`` for every validation metric of the module, with its direction."""
        if not (self.validate_ema and self._evaluates(pl_module)):
            return {}
        return {f"val/{name}_ema": better for name, better in pl_module.evaluation_directions().items()}

    def decay_at(self, t: int) -> float:
        """Decay of the update made after ``t`` earlier ones: a host float, never read from a device."""
        decay = self.decay**self.update_every_n_steps
        return min(decay, 1 - (1 + t) ** (-2 / 3)) if self.warmup else decay

    # ---- tensors ---------------------------------------------------------------------------------

    def _averages(self, tensor: Tensor) -> bool:
        if isinstance(tensor, nn.Parameter):
            return tensor.requires_grad
        return self.buffers == "average" and tensor.is_floating_point()

    def attach(self, module: nn.Module) -> None:
        """Pair the module's tensors with EMA tensors, once; restore a checkpointed EMA if one was loaded.

        Called when fit starts, after the model is on its device and a resumed checkpoint is loaded.
        """
        live = {n: t for n, t in module.state_dict(keep_vars=True).items() if isinstance(t, Tensor)}
        self._module = module
        self._names = [n for n, t in live.items() if self._averages(t)]
        self._live = [live[n] for n in self._names]
        ema_dtype = [torch.promote_types(t.dtype, torch.float32) for t in self._live]
        self._ema = [t.detach().to(dtype=d, copy=True) for t, d in zip(self._live, ema_dtype, strict=True)]
        mixed = any(t.dtype != e.dtype for t, e in zip(self._live, self._ema, strict=True))
        self._staging = [torch.empty_like(e) for e in self._ema] if mixed else []
        self._buffer_index = [i for i, t in enumerate(self._live) if not isinstance(t, nn.Parameter)]
        if self._loaded is not None:
            self._restore(self._loaded)
            self._loaded = None

    def _restore(self, state: dict[str, Any]) -> None:
        saved = state["state_dict"]
        misfit = first_misfit(dict(zip(self._names, self._ema, strict=True)), saved, allow_extra=True)
        if misfit:
            raise ValueError(f"EMA state in the checkpoint does not fit the model: {misfit}")
        with torch.no_grad():
            torch._foreach_copy_(
                self._ema, [saved[n].to(e.device) for n, e in zip(self._names, self._ema, strict=True)]
            )
        self.updates = state["updates"]

    @torch.no_grad()
    def update(self) -> None:
        """One averaging step from the live weights: a single fused op over the prebuilt lists."""
        source = self._live
        if self._staging:
            torch._foreach_copy_(self._staging, self._live)
            source = self._staging
        torch._foreach_lerp_(self._ema, source, 1.0 - self.decay_at(self.updates))
        self.updates += 1

    def ema_state_dict(self) -> dict[str, Tensor]:
        """The averaged weights and buffers under ``module.state_dict()``'s keys (tensors are shared)."""
        if self._module is None:
            if self._loaded is None:
                raise RuntimeError("the EMA exists once fit has started or a checkpoint has been loaded")
            return dict(self._loaded["state_dict"])
        state = self._module.state_dict()
        state.update(zip(self._names, self._ema, strict=True))
        return state

    # ---- training --------------------------------------------------------------------------------

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.attach(pl_module)
        self._step = trainer.global_step

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step == self._step or not self._ema:
            return  # a micro-batch that only accumulated gradients
        self._step = step
        if step <= self.start_step:
            with torch.no_grad():
                torch._foreach_copy_(self._ema, self._live)
        elif (step - self.start_step) % self.update_every_n_steps == 0:
            self.update()

    def state_dict(self) -> dict[str, Any]:
        if self._module is None and self._loaded is None:
            return {}
        return {"state_dict": self.ema_state_dict(), "updates": self.updates}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict:
            self._loaded = state_dict  # used by the next fit start (resume) or test start

    # ---- validation ------------------------------------------------------------------------------

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not (self.validate_ema and self._ema):
            return
        if not self._evaluates(pl_module):
            rank_zero_warn(
                f"EMA: {type(pl_module).__name__} has no evaluation_step(batch, split, weights), so only "
                "its live weights are validated (subclass litplate.runtime.module.TaskModule to get both)"
            )
            self.validate_ema = False
            return
        if self.sync_buffers and trainer.world_size > 1 and self._buffer_index:
            self._average_buffers_over_ranks(trainer)
        live = dict(zip(self._names, self._live, strict=True))
        self._eval_tensors = {n: e.to(live[n].dtype) for n, e in zip(self._names, self._ema, strict=True)}

    def _average_buffers_over_ranks(self, trainer: L.Trainer) -> None:
        buffers = [self._ema[i] for i in self._buffer_index]
        flat = trainer.strategy.reduce(torch.cat([b.flatten() for b in buffers]), reduce_op="mean")
        averaged = flat.split([b.numel() for b in buffers])
        with torch.no_grad():
            torch._foreach_copy_(buffers, [a.view_as(b) for a, b in zip(averaged, buffers, strict=True)])

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._eval_tensors:  # under the precision's autocast, as the live weights' validation step
            with trainer.precision_plugin.val_step_context():
                pl_module.evaluation_step(batch, "val_ema", weights=self._eval_tensors)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._eval_tensors:
            pl_module.log_evaluation("val_ema", "val", suffix="_ema")  # computed over all ranks
            self._eval_tensors = {}

    # ---- test ------------------------------------------------------------------------------------

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._loaded is not None:  # the checkpoint being tested, e.g. the best one
            ema, updates = self._loaded["state_dict"], self._loaded["updates"]
        elif self._module is not None:
            ema, updates = self.ema_state_dict(), self.updates
        else:
            ema, updates = None, 0
        if not self.test_ema or ema is None:
            reason = "callbacks.ema.test_ema=false" if not self.test_ema else "no EMA state to test"
            _say(f"Test metrics below are for the LIVE weights ({reason}).")
            return
        self._live_backup = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        pl_module.load_state_dict(ema)
        _say(
            f"Test metrics below are for the EMA weights (decay {self.decay}, {updates} updates); "
            "callbacks.ema.test_ema=false tests the live weights."
        )

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._live_backup is not None:
            pl_module.load_state_dict(self._live_backup)
            self._live_backup = None
        self._loaded = None


@rank_zero_only
def _say(message: str) -> None:
    print(message)
