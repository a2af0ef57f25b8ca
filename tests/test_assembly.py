"""build_trainer(): which of the configured callbacks the Trainer gets."""

import io
import threading
import time

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel
from rich.live import Live

from litplate.runtime import callbacks
from litplate.runtime.assembly import build_trainer
from litplate.runtime.components import build_group


def checkpoint_files(cfg) -> list[str]:
    trainer = build_trainer(cfg.trainer, build_group(cfg.callbacks, "callbacks"), [])
    return sorted(c.filename for c in trainer.callbacks if isinstance(c, ModelCheckpoint))


def test_a_checkpoint_callback_that_never_saves_is_left_out(cfg_factory):
    # step_checkpoint is off by default (every_n_train_steps=0): Lightning would still call its
    # hooks on every step, for nothing.
    assert checkpoint_files(cfg_factory()) == ["epoch_{epoch:03d}", "last"]
    on = cfg_factory("callbacks.step_checkpoint.every_n_train_steps=5")
    assert checkpoint_files(on) == ["epoch_{epoch:03d}", "last", "step"]


def test_the_only_checkpoint_callback_stays_even_when_it_never_saves(cfg_factory):
    # Without any, Lightning would add a ModelCheckpoint of its own, which does save.
    cfg = cfg_factory("~callbacks.model_checkpoint", "~callbacks.last_checkpoint")
    assert checkpoint_files(cfg) == ["step"]


def test_the_template_checkpoints_keep_lightnings_state_keys_and_save_every_n_steps(tmp_path):
    """``runtime.callbacks.ModelCheckpoint`` builds its state key once and skips the batch-end check
    when nothing can save there: the key is still Lightning's, and a step trigger still saves."""
    settings = {"dirpath": tmp_path, "monitor": "val/acc", "mode": "max", "every_n_train_steps": 3}
    assert callbacks.ModelCheckpoint(**settings).state_key == ModelCheckpoint(**settings).state_key
    step = callbacks.ModelCheckpoint(dirpath=tmp_path, filename="step", every_n_train_steps=3, save_top_k=1)
    never = callbacks.ModelCheckpoint(dirpath=tmp_path / "never", every_n_epochs=0, save_top_k=1)
    L.Trainer(
        max_steps=7, limit_val_batches=0, logger=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[step, never], default_root_dir=tmp_path,
    ).fit(BoringModel())  # fmt: skip
    assert torch.load(tmp_path / "step.ckpt", weights_only=True)["global_step"] == 6
    assert not (tmp_path / "never").exists()


class _LogsItsStep(BoringModel):
    def training_step(self, batch, batch_idx):
        self.log("train/loss", torch.tensor(float(self.global_step)))
        return super().training_step(batch, batch_idx)


def test_the_rich_bar_updates_its_training_row_as_often_as_it_draws_and_ends_each_epoch_complete(
    tmp_path, monkeypatch
):
    # refresh_rate=1: one draw a second. A BoringModel epoch of 40 batches takes far less, so
    # Lightning's per-batch update runs on the first batch and on each epoch's last batch only. The
    # logged steps' values (steps 25, 50, 75) are read on those steps; the next update shows them.
    seen: list[tuple[int, int]] = []
    read: list[tuple[int, float | None]] = []
    shown: list[float | None] = []
    lightning_update = L.pytorch.callbacks.RichProgressBar.on_train_batch_end

    def counted(self, trainer, pl_module, outputs, batch, batch_idx):
        seen.append((trainer.current_epoch, batch_idx))
        lightning_update(self, trainer, pl_module, outputs, batch, batch_idx)

    class Reads(callbacks.RichProgressBar):
        def _read(self, trainer):
            super()._read(trainer)
            read.append((trainer.global_step, self._values.get("train/loss")))

        def get_metrics(self, trainer, pl_module):
            items = super().get_metrics(trainer, pl_module)
            shown.append(items.get("train/loss"))
            return items

    monkeypatch.setattr(L.pytorch.callbacks.RichProgressBar, "on_train_batch_end", counted)
    bar = Reads(refresh_rate=1)
    L.Trainer(
        max_epochs=2, limit_train_batches=40, limit_val_batches=0, log_every_n_steps=25, callbacks=[bar],
        logger=False, enable_checkpointing=False, enable_model_summary=False, default_root_dir=tmp_path,
    ).fit(_LogsItsStep())  # fmt: skip
    assert seen[0] == (0, 0) and seen[-1] == (1, 39)
    assert {(0, 39), (1, 39)} <= set(seen)
    assert len(seen) <= 6  # of 80 batches
    assert read == [(25, 24.0), (50, 49.0), (75, 74.0)]  # each logged step's value, on its own step
    row = bar.progress.tasks[bar.train_progress_bar_id]
    assert row.completed == 40  # the last update of the last epoch
    assert shown[-1] == 74.0  # what the row shows at the end: the last logged step's value


def _epoch_start_draws(bar_class, tmp_path, monkeypatch) -> tuple[int, str]:
    """How often the display was drawn in the training thread during the epoch-start hooks, and
    everything drawn (a terminal console of 200 columns, into a string)."""
    inside, drawn_there = [False], [0]
    live_refresh = Live.refresh

    def refresh(self):
        drawn_there[0] += inside[0] and threading.current_thread() is threading.main_thread()
        live_refresh(self)

    monkeypatch.setattr(Live, "refresh", refresh)
    epoch_start = bar_class.on_train_epoch_start

    def watched(self, trainer, pl_module):
        inside[0] = True
        try:
            epoch_start(self, trainer, pl_module)
        finally:
            inside[0] = False

    monkeypatch.setattr(bar_class, "on_train_epoch_start", watched)
    out = io.StringIO()

    class Slow(L.Callback):  # each epoch lasts several of the bar's drawing intervals (20 ms)
        def on_train_batch_end(self, *args):
            time.sleep(0.02)

    bar = bar_class(refresh_rate=50, console_kwargs={"file": out, "force_terminal": True, "width": 200})
    L.Trainer(
        max_epochs=2, limit_train_batches=5, limit_val_batches=0, callbacks=[bar, Slow()],
        logger=False, enable_checkpointing=False, enable_model_summary=False, default_root_dir=tmp_path,
    ).fit(BoringModel())  # fmt: skip
    return drawn_there[0], out.getvalue()


def test_the_rich_bar_draws_a_new_epochs_row_from_its_own_thread(tmp_path, monkeypatch):
    drawn_in_training_thread, shown = _epoch_start_draws(callbacks.RichProgressBar, tmp_path, monkeypatch)
    assert drawn_in_training_thread == 0
    assert "Epoch 0/1" in shown and "Epoch 1/1" in shown  # each epoch's row, drawn by rich's thread
    # Lightning's own bar draws at each epoch's start, in the training thread
    drawn_by_lightning, _ = _epoch_start_draws(L.pytorch.callbacks.RichProgressBar, tmp_path, monkeypatch)
    assert drawn_by_lightning >= 2


def test_the_rich_bar_catches_up_when_fit_stops_inside_an_epoch(tmp_path):
    bar = callbacks.RichProgressBar(refresh_rate=1)  # one update a second: none due after the first
    L.Trainer(
        max_steps=33, limit_train_batches=40, limit_val_batches=0, log_every_n_steps=5, callbacks=[bar],
        logger=False, enable_checkpointing=False, enable_model_summary=False, default_root_dir=tmp_path,
    ).fit(_LogsItsStep())  # fmt: skip
    assert bar.progress.tasks[bar.train_progress_bar_id].completed == 33  # not where the last update was
    assert bar._items["train/loss"] == 29.0  # the last logged step's value


def test_a_disabled_rich_bar_reads_nothing(tmp_path):
    reads: list[int] = []

    class Counts(callbacks.RichProgressBar):
        def _read(self, trainer):
            reads.append(trainer.global_step)
            super()._read(trainer)

    bar = Counts(refresh_rate=1)
    bar.disable()  # as Lightning does on every rank but 0
    L.Trainer(
        max_epochs=1, limit_train_batches=20, limit_val_batches=0, log_every_n_steps=5, callbacks=[bar],
        logger=False, enable_checkpointing=False, enable_model_summary=False, default_root_dir=tmp_path,
    ).fit(_LogsItsStep())  # fmt: skip
    assert reads == []
