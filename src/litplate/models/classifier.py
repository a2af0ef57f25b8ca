"""The LightningModule: cross-entropy plus L1/L2 penalties, plateau scheduling on the epoch mean."""

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from litplate.metrics import WeightedMeans
from litplate.models.regularization import WeightPenalty
from litplate.training_plan import TrainingPlan

TRAIN_TERMS = ["loss_epoch", "data_loss", "l1", "l2", "acc"]


def _plain(config: Any) -> Any:
    return OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else config


class Classifier(L.LightningModule):
    """Classifier around any ``net`` config; sub-configs are instantiated here, not by Hydra.

    Keeping plain config dicts as hyperparameters makes every checkpoint self-describing:
    ``Classifier.load_from_checkpoint(path)`` rebuilds the net without the run's YAML, and the
    checkpoint still loads with ``weights_only=True``.

    Training objective per batch: ``cross_entropy + l1 * sum|w| + l2 * sum w**2``
    (see ``WeightPenalty``). Its sample-weighted epoch mean over all ranks is logged as
    ``train/loss_epoch`` and is what ReduceLROnPlateau sees by default (``monitor``).
    """

    def __init__(
        self,
        net: dict,
        optimizer: dict,
        scheduler: dict | None = None,
        regularization: dict | None = None,
        monitor: str = "train/loss_epoch",
        num_classes: int = 10,
        compile: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(
            {
                "net": _plain(net),
                "optimizer": _plain(optimizer),
                "scheduler": _plain(scheduler),
                "regularization": _plain(regularization) or {},
                "monitor": monitor,
                "num_classes": num_classes,
                "compile": compile,
            },
            logger=False,
        )
        self.net = instantiate(self.hparams.net)
        if compile:
            # The net's forward, not the module: state_dict keys stay free of "_orig_mod.". Not
            # ``self.net.compile()``: with torch 2.13 that captures no graph and runs eagerly.
            self.net.forward = torch.compile(self.net.forward)
        self.penalty = WeightPenalty(**self.hparams.regularization)
        self.monitor = monitor
        self.train_means = WeightedMeans(TRAIN_TERMS)
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc_best = MaxMetric()
        self._weights: list[Tensor] = []
        self._data_scale: list[float] = []
        self._penalty_scale: list[float] = []
        self.loss_terms: dict[str, Tensor] = {}  # last batch's terms, for error messages
        self._validated_epoch = -1  # the last epoch that ran validation (see _step_plateau)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    @staticmethod
    def metric_names() -> list[str]:
        """Every metric this module logs: what ``monitor`` and checkpointing may name."""
        return [f"train/{t}" for t in TRAIN_TERMS] + [
            "train/loss",
            "val/loss",
            "val/acc",
            "val/acc_best",
            "test/loss",
            "test/acc",
        ]

    # ---- training ------------------------------------------------------------------------------

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
        if a == 1:
            self._data_scale = self._penalty_scale = []
            return
        sizes = plan.batch_sizes()
        self._data_scale, self._penalty_scale = [], []
        for start in range(0, len(sizes), a):
            window = sizes[start : start + a]
            self._data_scale += [a * n / sum(window) for n in window]
            self._penalty_scale += [a / len(window)] * len(window)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        logits = self.net(x)
        data_loss = F.cross_entropy(logits, y)
        l1, l2 = self.penalty(self._weights)
        objective = data_loss + l1 + l2
        self.loss_terms = {"data_loss": data_loss.detach(), "l1": l1.detach(), "l2": l2.detach()}
        acc = (logits.argmax(1) == y).float().mean()
        self.train_means.update(torch.stack([objective, data_loss, l1, l2, acc]), y.shape[0])
        if self._step_is_logged():
            self.log("train/loss", objective.detach(), on_step=True, on_epoch=False, prog_bar=True)
        if self._data_scale:  # one scale per micro-batch of the epoch; an index past the plan is a bug
            return data_loss * self._data_scale[batch_idx] + (l1 + l2) * self._penalty_scale[batch_idx]
        return objective

    def _step_is_logged(self) -> bool:
        """Whether the loggers write this step's values (every ``trainer.log_every_n_steps``).

        ``self.log`` costs more than a small model's whole step (Lightning moves its result
        object's state to the device on every call), so it is called only on the steps that get
        written; the progress bar shows the last written value.
        """
        every = self.trainer.log_every_n_steps
        return bool(every) and (self.global_step + 1) % every == 0

    def on_train_epoch_end(self) -> None:
        means = self.train_means.compute()  # global, sample-weighted: identical on every rank
        self.train_means.reset()
        self.log_dict({f"train/{k}": v for k, v in means.items()}, sync_dist=False)
        self._step_plateau({f"train/{k}": v for k, v in means.items()})

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

    # ---- evaluation ----------------------------------------------------------------------------

    def _evaluate(self, batch: tuple[Tensor, Tensor], loss_metric: MeanMetric, acc: MulticlassAccuracy):
        x, y = batch
        logits = self.net(x)
        loss_metric.update(F.cross_entropy(logits, y), y.shape[0])
        acc.update(logits, y)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.val_loss, self.val_acc)

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._validated_epoch = self.current_epoch
        acc = self.val_acc.compute()
        metrics = {"val/loss": self.val_loss.compute(), "val/acc": acc}
        if not self.trainer.sanity_checking:  # a few sanity batches are no epoch to be best at
            self.val_acc_best.update(acc)
            metrics["val/acc_best"] = self.val_acc_best.compute()
        self.log_dict(metrics, prog_bar=True)
        self.val_loss.reset()
        self.val_acc.reset()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The best so far goes with the checkpoint, so a resumed run's val/acc_best (what sweeps
        # optimize) is the max over the whole run. Not in state_dict: that is the net's weights only.
        checkpoint["val_acc_best"] = self.val_acc_best.max_value.detach().cpu()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "val_acc_best" in checkpoint:
            self.val_acc_best.max_value = checkpoint["val_acc_best"].to(self.val_acc_best.max_value.device)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.test_loss, self.test_acc)

    def on_test_epoch_end(self) -> None:
        self.log_dict({"test/loss": self.test_loss.compute(), "test/acc": self.test_acc.compute()})
        self.test_loss.reset()
        self.test_acc.reset()

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self.net(batch[0]).softmax(-1)

    # ---- optimization --------------------------------------------------------------------------

    def configure_optimizers(self) -> dict:
        optimizer = instantiate(self.hparams.optimizer, params=self.parameters())
        if not self.hparams.scheduler:
            return {"optimizer": optimizer}
        scheduler = instantiate(self.hparams.scheduler, optimizer=optimizer)
        config = {"scheduler": scheduler, "interval": "epoch", "frequency": 1}
        if isinstance(scheduler, ReduceLROnPlateau):
            config |= {"monitor": self.monitor, "strict": False}
        return {"optimizer": optimizer, "lr_scheduler": config}
