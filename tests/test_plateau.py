"""ReduceLROnPlateau sees the sample-weighted epoch mean of the training objective.

A real scheduler, subclassed only to record what ``step`` receives, is configured through
``model.scheduler._target_`` exactly as a user would configure their own.
"""

import csv

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.optim.lr_scheduler import ReduceLROnPlateau

from litplate.runtime.errors import ConfigError
from litplate.train import train

L1, L2 = 1e-4, 1e-3

# Synthetic train split of 233 - 23 - 23 = 187 samples in batches of 20: the last batch holds 7.
UNEVEN = [
    "data=synthetic",
    "data.num_samples=233",
    "data.batch_size=20",
    "model.net.hidden=[32]",
    "model.net.dropout=0",  # so a replayed forward pass gives exactly the step's loss
    f"model.regularization.l1={L1}",
    f"model.regularization.l2={L2}",
    "model.scheduler._target_=test_plateau.RecordingPlateau",
    "~callbacks.model_checkpoint",
]
QUIET = [*UNEVEN, "~logger.tensorboard", "~callbacks.lr_monitor"]


class RecordingPlateau(ReduceLROnPlateau):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.received: list[float] = []

    def step(self, metrics, epoch=None):
        self.received.append(float(metrics))
        super().step(metrics)


class ObjectiveReplay(L.Callback):
    """Recomputes each step's objective by hand from the weights the step is about to use."""

    def __init__(self):
        self.epochs: list[list[tuple[int, float]]] = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.epochs.append([])

    @torch.no_grad()
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        x, y = batch
        weights = [m.weight for m in pl_module.net.modules() if isinstance(m, torch.nn.Linear)]
        data_loss = F.cross_entropy(pl_module.net(x), y).item()
        l1 = L1 * sum(w.abs().sum().item() for w in weights)
        l2 = L2 * sum(w.pow(2).sum().item() for w in weights)
        self.epochs[-1].append((len(y), data_loss + l1 + l2))


def scheduler_of(trainer: L.Trainer) -> RecordingPlateau:
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert isinstance(scheduler, RecordingPlateau)
    return scheduler


def test_scheduler_receives_sample_weighted_epoch_mean(cfg_factory, fit):
    replay = ObjectiveReplay()
    trainer = fit(cfg_factory(*QUIET, "trainer.max_epochs=3"), replay)
    received = scheduler_of(trainer).received
    assert len(received) == 3  # once per epoch

    for value, batches in zip(received, replay.epochs, strict=True):
        sizes = [n for n, _ in batches]
        assert sum(sizes) == 187 and sizes[-1] == 7
        weighted = sum(n * obj for n, obj in batches) / sum(sizes)
        unweighted = sum(obj for _, obj in batches) / len(batches)
        last = batches[-1][1]
        assert value == pytest.approx(weighted, rel=1e-5)
        # The check can tell the three apart: the wrong answers are far outside its tolerance.
        assert abs(unweighted - weighted) > 1e-4 * weighted
        assert abs(last - weighted) > 1e-4 * weighted
    assert trainer.callback_metrics["train/loss_epoch"].item() == pytest.approx(received[-1], rel=1e-6)


class ValLoss(L.Callback):
    """The validation loss recomputed by hand at each epoch's end (after that epoch's validation)."""

    def __init__(self):
        self.values: dict[int, float] = {}

    @torch.no_grad()
    def on_train_epoch_end(self, trainer, pl_module):  # callbacks run before the module's hook
        x, y = trainer.datamodule.val_set.features, trainer.datamodule.val_set.targets
        pl_module.eval()
        self.values[trainer.current_epoch] = F.cross_entropy(pl_module(x), y).item()
        pl_module.train()


def test_monitor_val_loss(cfg_factory, fit):
    """``model.monitor=val/loss``: the scheduler gets this epoch's validation loss."""
    val_loss = ValLoss()
    trainer = fit(cfg_factory(*QUIET, "model.monitor=val/loss", "trainer.max_epochs=2"), val_loss)
    received = scheduler_of(trainer).received
    assert received == pytest.approx([val_loss.values[0], val_loss.values[1]], rel=1e-5)
    assert received[-1] == pytest.approx(trainer.callback_metrics["val/loss"].item())
    assert received[-1] != pytest.approx(trainer.callback_metrics["train/loss_epoch"].item(), rel=1e-3)


def test_monitor_val_loss_steps_only_on_validated_epochs(cfg_factory, fit):
    """Validating every second epoch: no step on the others, where only a stale value exists."""
    val_loss = ValLoss()
    cfg = cfg_factory(
        *QUIET, "model.monitor=val/loss", "trainer.check_val_every_n_epoch=2", "trainer.max_epochs=4"
    )
    received = scheduler_of(fit(cfg, val_loss)).received
    assert received == pytest.approx([val_loss.values[1], val_loss.values[3]], rel=1e-5)


def test_never_logged_monitor_fails_before_training(cfg_factory, tmp_path):
    cfg = cfg_factory("model.monitor=val/accuracy")
    with pytest.raises(ConfigError) as error:
        train(cfg)
    message = str(error.value)
    assert "model.monitor='val/accuracy'" in message
    for available in ("train/loss_epoch", "val/loss", "val/acc"):
        assert available in message
    assert "\n" not in message
    assert not (tmp_path / "checkpoints").exists()
    assert not (tmp_path / "tensorboard").exists()


def test_step_metric_as_monitor_is_refused(cfg_factory):
    with pytest.raises(
        ConfigError, match="model.monitor='train/loss' is logged per step.*use train/loss_epoch"
    ):
        train(cfg_factory("model.monitor=train/loss"))


def test_val_monitor_without_validation_fails_before_training(cfg_factory, tmp_path):
    with pytest.raises(
        ConfigError, match="model.monitor='val/loss' is never logged: trainer.limit_val_batches=0"
    ):
        train(cfg_factory("model.monitor=val/loss", "trainer.limit_val_batches=0"))
    assert not (tmp_path / "checkpoints").exists()


def test_lr_drops_after_patience_and_is_logged(cfg_factory, fit, tmp_path):
    """With a learning rate too small to improve the loss, patience=1 halves it after epoch 3.

    End of epoch 1 sets the best value, epochs 2 and 3 do not improve on it, and the second bad
    epoch exceeds the patience: LearningRateMonitor logs the halved rate at the start of epoch 4.
    """
    cfg = cfg_factory(
        *UNEVEN,
        "model.optimizer.lr=1e-7",
        "model.scheduler.patience=1",
        "model.scheduler.factor=0.5",
        "trainer.max_epochs=4",
        "logger=csv",
    )
    trainer = fit(cfg)
    scheduler = scheduler_of(trainer)
    assert len(scheduler.received) == 4
    assert scheduler.num_bad_epochs == 1  # reset by the reduction, then one more bad epoch
    with open(tmp_path / "csv" / "metrics.csv") as f:
        lrs = [(int(r["step"]), float(r["lr-AdamW"])) for r in csv.DictReader(f) if r.get("lr-AdamW")]
    # Logged once per epoch, at its first step (10 steps per epoch).
    assert lrs == [(0, 1e-7), (10, 1e-7), (20, 1e-7), (30, pytest.approx(5e-8))]
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(5e-8)
