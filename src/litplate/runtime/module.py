"""The base LightningModule: the training mechanics every task gets, whatever its loss and metrics.

A task subclasses ``TaskModule`` and writes only what is its own (see ``models/classifier.py``):

- ``loss(outputs, targets)``: the data loss of a batch, a mean over its samples;
- ``metrics()``: fresh torchmetrics for one evaluation split, e.g. ``{"acc": MulticlassAccuracy(...)}``;
- optionally ``train_terms`` and ``batch_terms(outputs, targets)``: per-batch means (e.g. accuracy)
  averaged over the training epoch next to the loss;
- optionally ``predictions(outputs)``: the columns ``predict.py`` writes.

Everything else lives here, so it still applies to a new task: the L1/L2 penalties, loss scales that
make gradient accumulation equal the big batch, sample-weighted epoch means over all ranks,
ReduceLROnPlateau stepped on them before checkpoints are written, ``self.log`` only on the steps
that are written, and an evaluation path (``evaluation_step``/``log_evaluation``) that the EMA
callback reuses with the averaged weights.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor, nn
from torch.func import functional_call
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torchmetrics import MeanMetric, Metric

from litplate.runtime import checks, module_args
from litplate.runtime.checkpointing import load_checkpoint
from litplate.runtime.components import build
from litplate.runtime.epoch_means import WeightedMeans
from litplate.runtime.regularization import WeightPenalty
from litplate.runtime.stopping import inside_epoch
from litplate.runtime.training_plan import TrainingPlan
from litplate.runtime.trusted_targets import check_targets, checkpoint_configs
from litplate.runtime.upstream.lightning_20388_log_moves_its_result import stay_where_they_are

# Logged by every TaskModule, whatever its task: the objective and its parts.
OBJECTIVE_TERMS = ("loss_epoch", "data_loss", "l1", "l2")


class TaskModule(L.LightningModule):
    """Builds ``net``, the optimizer and the scheduler from plain config dicts, here rather than by Hydra.

    Keeping plain dicts as hyperparameters makes every checkpoint self-describing: the net is
    rebuilt from it without the run's YAML, and the checkpoint still loads with ``weights_only=True``.
    ``input_shape`` and ``num_outputs`` come from the datamodule (``assembly.build_model``), so a net's
    config never repeats them; they are passed to the net as keyword arguments.

    Training objective per batch: ``loss + l1 * sum|w| + l2 * sum w**2`` (``WeightPenalty``). Its
    sample-weighted epoch mean over all ranks is logged as ``train/loss_epoch`` and is what
    ReduceLROnPlateau sees by default (``monitor``).
    """

    train_terms: tuple[str, ...] = ()  # names of what ``batch_terms`` returns, in order
    min_outputs = 1  # the data must give at least this many outputs (``num_outputs``)
    outputs_needed = "data with at least one target"

    def __init__(
        self,
        net: Mapping[str, Any],
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None = None,
        regularization: Mapping[str, Any] | None = None,
        monitor: str = "train/loss_epoch",
        compile: bool = False,
        channels_last: bool = False,
        *,
        input_shape: Sequence[int],
        num_outputs: int,
    ) -> None:
        super().__init__()
        # Not ``@module_args.TaskModule.check``: save_hyperparameters reads the arguments of a
        # subclass's __init__ from the frames around this one, and a decorator's frame would hide them.
        checked = module_args.TaskModule.checked(
            {
                "optimizer": optimizer,
                "scheduler": scheduler,
                "regularization": regularization,
                "compile": compile,
                "channels_last": channels_last,
            }
        )
        checks.sizes("input_shape", list(input_shape))
        if channels_last and len(input_shape) != 3:  # needs the data's shape: checked when built
            raise checks.ArgumentError.of(
                "channels_last",
                channels_last,
                f"false: the data's samples {tuple(input_shape)} are not images (C, H, W)",
            )
        if not (isinstance(num_outputs, int) and num_outputs >= self.min_outputs):
            raise checks.ArgumentError.of("num_outputs", num_outputs, self.outputs_needed)
        self.save_hyperparameters(logger=False)
        for key, value in self.hparams.items():  # plain containers: checkpoints load with weights_only
            if isinstance(value, DictConfig | ListConfig):
                self.hparams[key] = OmegaConf.to_container(value, resolve=True)
        self.input_shape = tuple(input_shape)
        self.num_outputs = num_outputs
        self.monitor = monitor
        self.net: nn.Module = build(net, "net", input_shape=self.input_shape, num_outputs=num_outputs)
        # Convolutions on NHWC tensors: tensor cores take them without the layout transposes that
        # NCHW costs around every cuDNN convolution under bf16/fp16. Kernels and inputs both.
        self.channels_last = channels_last
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        if compile:
            # The net's forward, not the module: state_dict keys stay free of "_orig_mod.". Not
            # ``self.net.compile()``: with torch 2.13 that captures no graph and runs eagerly.
            self.net.forward = torch.compile(self.net.forward)
        self.penalty = WeightPenalty(**(checked["regularization"] or {}))
        # Built once here so that a bad optimizer or scheduler setting fails now, not when fit starts.
        self._build_optimization(key_prefix="")
        self.train_means = WeightedMeans(["loss_epoch", *OBJECTIVE_TERMS[1:], *self.train_terms])
        # One set of evaluation metrics per split; "val_ema" and the like are added on first use.
        self.eval_metrics = nn.ModuleDict({split: self._new_metrics() for split in ("val", "test")})
        self._weights: list[Tensor] = []
        self._data_scale: list[float] = []
        self._penalty_scale: list[float] = []
        self.loss_terms: dict[str, Tensor] = {}  # last batch's terms, for error messages
        self._validated_epoch = -1  # the last epoch that ran validation (see _step_plateau)

    @classmethod
    def load_from_checkpoint(
        cls, checkpoint_path: Any, *args: Any, trusted: Sequence[str] = (), **kwargs: Any
    ):
        """Lightning's, after checking that every ``_target_`` in the stored hyperparameters (the net,
        optimizer and scheduler this module would build) is a trusted class: a checkpoint is
        untrusted input (``trusted_targets.py``), and ``trusted`` adds package prefixes."""
        stored = load_checkpoint(checkpoint_path).get(cls.CHECKPOINT_HYPER_PARAMS_KEY, {})
        check_targets(stored, str(checkpoint_path), trusted)
        kwargs.setdefault("weights_only", True)
        with checkpoint_configs(trusted):
            return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    # ---- what a task defines ---------------------------------------------------------------------

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        raise NotImplementedError

    def metrics(self) -> dict[str, Metric]:
        """Fresh metrics for one evaluation split; each is updated with ``(outputs, targets)``."""
        return {}

    def batch_terms(self, outputs: Tensor, targets: Tensor) -> Sequence[Tensor]:
        """Per-batch means averaged over the training epoch, one per name in ``train_terms``."""
        return ()

    def predictions(self, outputs: Tensor) -> dict[str, Tensor]:
        """Columns for ``predict.py``: one tensor of ``len(outputs)`` rows (or rows x k) per name."""
        return {"output": outputs}

    # ---- names -----------------------------------------------------------------------------------

    def logged_metrics(self) -> dict[str, str | None]:
        """Every metric this module logs, with the direction that is better (``"min"``/``"max"``,
        None where unknown): what ``monitor`` and checkpointing may name, and which ``mode`` fits."""
        evaluation = self.evaluation_directions()
        train = {"train/loss": "min", **{f"train/{t}": "min" for t in OBJECTIVE_TERMS}}
        train |= {f"train/{t}": evaluation.get(t) for t in self.train_terms}
        return train | {f"{split}/{n}": d for split in ("val", "test") for n, d in evaluation.items()}

    def evaluation_directions(self) -> dict[str, str | None]:
        """The evaluation metrics' names and directions (torchmetrics' ``higher_is_better``)."""
        directions = {}
        for name, metric in self.eval_metrics["val"].items():
            higher = getattr(metric, "higher_is_better", None) if name != "loss" else False
            directions[name] = None if higher is None else ("max" if higher else "min")
        return directions

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    # ---- training --------------------------------------------------------------------------------

    def on_train_start(self) -> None:
        self._weights = WeightPenalty.weights(self.net)
        self._plan_accumulation(TrainingPlan.from_trainer(self.trainer))

    def _plan_accumulation(self, plan: TrainingPlan) -> None:
        """Per-micro-batch loss scales that make an accumulated step equal the big-batch step.

        Lightning divides every micro-batch loss by A, also in the epoch's last, shorter window,
        and weights unequal micro-batches equally. Returning ``A * n_i / W`` times the data loss
        (W: samples in the window) and ``A / k`` times the penalty (k: micro-batches in the window)
        makes the summed gradient the sample mean over the window plus the penalty once.
        """
        a = plan.accumulation
        self._data_scale, self._penalty_scale = [], []
        if a == 1:
            return
        sizes = plan.batch_sizes()
        for start in range(0, len(sizes), a):
            window = sizes[start : start + a]
            self._data_scale += [a * n / sum(window) for n in window]
            self._penalty_scale += [a / len(window)] * len(window)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        outputs = self(x)
        data_loss = self.loss(outputs, y)
        l1, l2 = self.penalty(self._weights)
        objective = data_loss + l1 + l2
        self.loss_terms = {"data_loss": data_loss.detach(), "l1": l1.detach(), "l2": l2.detach()}
        with torch.no_grad():
            terms = [objective, data_loss, l1, l2, *self.batch_terms(outputs, y)]
            self.train_means.update(torch.stack(terms), len(y))
        if self._step_is_logged():
            # Not prog_bar=True: Lightning would read it back every step (runtime/callbacks/progress_bar.py).
            self.log("train/loss", objective.detach(), on_step=True, on_epoch=False)
        if self._data_scale:  # one scale per micro-batch of the epoch; an index past the plan is a bug
            return data_loss * self._data_scale[batch_idx] + (l1 + l2) * self._penalty_scale[batch_idx]
        return objective

    def log(self, name: str, value: Any, *args: Any, **kwargs: Any) -> None:
        """Lightning's; then its result object no longer walks itself on each call to move where it
        is (``upstream/lightning_20388_log_moves_its_result.py``)."""
        super().log(name, value, *args, **kwargs)
        stay_where_they_are(self._trainer)

    def _step_is_logged(self) -> bool:
        """Whether the loggers write this step's values (every ``trainer.log_every_n_steps``).

        ``self.log`` costs a good part of a small model's step (more than all of it before ``log``
        below), so it is called only on the steps that get written; the progress bar shows the last
        written value.
        """
        every = self.trainer.log_every_n_steps
        return bool(every) and (self.global_step + 1) % every == 0

    def on_train_epoch_end(self) -> None:
        if inside_epoch(self.trainer):  # fit stopped inside the epoch: its means and plateau step wait
            return
        means = self.train_means.compute()  # global, sample-weighted: identical on every rank
        self.train_means.reset()
        epoch_metrics = {f"train/{k}": v for k, v in means.items()}
        self.log_dict(epoch_metrics, sync_dist=False)
        self._step_plateau(epoch_metrics)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["epoch_means"] = self.train_means.state_dict()  # partial sums, if mid-epoch

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "epoch_means" in checkpoint:  # absent in checkpoints from before it was saved
            self.train_means.load_state_dict(checkpoint["epoch_means"])

    def _step_plateau(self, epoch_metrics: dict[str, Tensor]) -> None:
        """Step ReduceLROnPlateau here, once per epoch, before checkpoints are written.

        Lightning steps it after ``on_train_epoch_end`` callbacks, i.e. after ModelCheckpoint has
        saved, and skips that step when it resumes from such a checkpoint: one plateau step lost
        per resume. Stepping it here puts the step inside the saved state.
        """
        scheduler = self.lr_schedulers()
        if not isinstance(scheduler, ReduceLROnPlateau):
            return
        value = epoch_metrics.get(self.monitor)
        if value is None and self._validated_epoch != self.current_epoch:
            # No validation this epoch (check_val_every_n_epoch > 1): callback_metrics would only
            # hold the last validation's value, and stepping on it again counts a false bad epoch.
            return
        value = value if value is not None else self.trainer.callback_metrics.get(self.monitor)
        if value is None:
            available = sorted(set(epoch_metrics) | set(self.trainer.callback_metrics))
            raise KeyError(f"model.monitor={self.monitor!r} was not logged; available: {available}")
        scheduler.step(float(value))

    def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
        if isinstance(scheduler, ReduceLROnPlateau):
            return  # stepped in on_train_epoch_end
        super().lr_scheduler_step(scheduler, metric)

    # ---- evaluation ------------------------------------------------------------------------------

    def _new_metrics(self) -> nn.ModuleDict:
        return nn.ModuleDict({"loss": MeanMetric(), **self.metrics()})

    def evaluation_step(
        self, batch: tuple[Tensor, Tensor], split: str, weights: Mapping[str, Tensor] | None = None
    ) -> None:
        """Update the metrics of ``split`` with one batch, through the module's own weights or ``weights``.

        ``weights`` (e.g. the EMA's) are used without touching the module's own tensors
        (``torch.func.functional_call``), under their own set of metrics.
        """
        x, y = batch
        outputs = self(x) if weights is None else functional_call(self, dict(weights), (x,))
        if split not in self.eval_metrics:
            self.eval_metrics[split] = self._new_metrics().to(self.device)
        metrics = self.eval_metrics[split]
        for name, metric in metrics.items():
            if name == "loss":
                metric.update(self.loss(outputs, y), len(y))
            else:
                metric.update(outputs, y)

    def log_evaluation(self, split: str, prefix: str, suffix: str = "") -> dict[str, Tensor]:
        """Compute (over all ranks), log as ``{prefix}/{name}{suffix}`` and reset the metrics of ``split``."""
        values = {
            f"{prefix}/{name}{suffix}": metric.compute() for name, metric in self.eval_metrics[split].items()
        }
        for metric in self.eval_metrics[split].values():
            metric.reset()
        self.log_dict(values, prog_bar=prefix == "val")
        return values

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.evaluation_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._validated_epoch = self.current_epoch
        self.log_evaluation("val", "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.evaluation_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self.log_evaluation("test", "test")

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self(batch[0])

    # ---- optimization ----------------------------------------------------------------------------

    def _build_optimization(self, key_prefix: str = "model.") -> tuple[Any, Any]:
        optimizer = build(self.hparams.optimizer, f"{key_prefix}optimizer", params=self.parameters())
        scheduler = None
        if self.hparams.scheduler:
            scheduler = build(self.hparams.scheduler, f"{key_prefix}scheduler", optimizer=optimizer)
        return optimizer, scheduler

    def configure_optimizers(self) -> dict:
        optimizer, scheduler = self._build_optimization()
        if scheduler is None:
            return {"optimizer": optimizer}
        config = {"scheduler": scheduler, "interval": "epoch", "frequency": 1}
        if isinstance(scheduler, ReduceLROnPlateau):
            config |= {"monitor": self.monitor, "strict": False}
        return {"optimizer": optimizer, "lr_scheduler": config}
