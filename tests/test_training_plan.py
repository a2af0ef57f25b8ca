"""The training plan's step arithmetic, by hand and against real fits."""

import io
import math
from dataclasses import replace

import pytest
from hydra.utils import instantiate
from rich.console import Console

from litplate.runtime.assembly import build_model
from litplate.runtime.callbacks import TrainingPlanPrinter
from litplate.runtime.training_plan import TrainingPlan
from litplate.train import train


def plan(**kwargs) -> TrainingPlan:
    args = {"num_samples": 100, "batch_size": 8, "world_size": 1, "num_nodes": 1, "accumulation": 1}
    return TrainingPlan(**(args | {"max_epochs": 3} | kwargs))


def test_single_device_uneven_last_batch():
    p = plan(num_samples=100, batch_size=8)
    assert p.samples_per_rank == 100
    assert p.batches_per_epoch == 13  # 12 full batches and one of 4
    assert p.batch_sizes() == [8] * 12 + [4]
    assert p.steps_per_epoch == 13
    assert p.total_steps == 39
    assert p.effective_batch_size == 8
    assert p.formula_steps == pytest.approx(100 * 3 / 8)


def test_world_size_two_pads_by_repeating_samples():
    # 101 samples over 2 ranks: the DistributedSampler repeats one so each rank gets 51.
    p = plan(num_samples=101, batch_size=10, world_size=2)
    assert p.samples_per_rank == 51
    assert p.batches_per_epoch == 6
    assert p.batch_sizes() == [10] * 5 + [1]
    assert p.effective_batch_size == 20
    assert p.total_steps == 18
    # The sampler's drop_last drops the tail instead.
    dropped = plan(num_samples=101, batch_size=10, world_size=2, sampler_drop_last=True)
    assert dropped.samples_per_rank == 50
    assert dropped.batch_sizes() == [10] * 5


def test_two_nodes_count_in_the_world_size():
    p = plan(num_samples=1000, batch_size=10, world_size=8, num_nodes=2)
    assert p.samples_per_rank == 125
    assert p.batches_per_epoch == 13
    assert "4 x 2 = 8" in _text(p)


def test_accumulation_three_with_partial_last_window():
    p = plan(num_samples=100, batch_size=8, accumulation=3, max_epochs=2)
    assert p.batches_per_epoch == 13
    assert p.steps_per_epoch == 5  # windows of 3, 3, 3, 3 and 1 micro-batches
    assert p.total_steps == 10
    assert p.effective_batch_size == 24
    assert p.formula_steps == pytest.approx(100 * 2 / 24)
    assert math.ceil(p.formula_steps) != p.total_steps  # why the exact rounding is printed


def test_drop_last_loader():
    p = plan(num_samples=100, batch_size=8, drop_last=True)
    assert p.batches_per_epoch == 12
    assert p.batch_sizes() == [8] * 12


def test_limit_train_batches_count_and_fraction():
    counted = plan(num_samples=100, batch_size=8, accumulation=2, limit_batches=5)
    assert counted.batches_per_epoch == 5
    assert counted.batch_sizes() == [8] * 5
    assert counted.steps_per_epoch == 3
    assert plan(num_samples=100, batch_size=8, limit_batches=50).batches_per_epoch == 13
    # Lightning keeps int(13 * 0.5) = 6 batches for a fraction.
    assert plan(num_samples=100, batch_size=8, limit_batches=0.5).batches_per_epoch == 6
    assert plan(num_samples=100, batch_size=8, limit_batches=0.5).batch_sizes() == [8] * 6


def _text(p: TrainingPlan) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(p.table())
    return out.getvalue()


def test_table_shows_formula_and_rounding():
    text = _text(plan(num_samples=100, batch_size=8, accumulation=3, max_epochs=2))
    assert "formula N x epochs / (world x B x A)" in text
    assert "8.33 (unrounded)" in text
    assert "ceil(100 / 8) = 13" in text
    assert "ceil(13 / 3) = 5" in text
    assert "5 x 2 = 10" in text


def _fit(cfg_factory, fit, *overrides):
    cfg = cfg_factory(
        "data=synthetic",
        "data.num_samples=233",  # train split: 233 - 23 val - 23 test = 187 samples
        "data.batch_size=20",  # 9 batches of 20 and one of 7
        "model.net.hidden=[32]",
        "trainer.max_epochs=2",
        "~logger.tensorboard",
        "~callbacks.model_checkpoint",
        "~callbacks.lr_monitor",
        *overrides,
    )
    trainer = fit(cfg)
    printer = next(c for c in trainer.callbacks if isinstance(c, TrainingPlanPrinter))
    return trainer, printer.plan


@pytest.mark.parametrize(
    ("overrides", "steps_per_epoch"),
    [
        ([], 10),
        (["trainer.accumulate_grad_batches=2"], 5),
        (["trainer.accumulate_grad_batches=3"], 4),  # last window: 1 micro-batch
        (["trainer.accumulate_grad_batches=3", "trainer.limit_train_batches=5"], 2),
        (["trainer.accumulate_grad_batches=2", "trainer.limit_train_batches=0.5"], 3),
    ],
)
def test_plan_equals_lightning_and_real_step_count(cfg_factory, fit, capsys, overrides, steps_per_epoch):
    trainer, p = _fit(cfg_factory, fit, *overrides)
    assert p.samples_per_rank == 187
    assert p.batch_sizes()[-1] == (7 if p.limit_batches is None else 20)
    assert p.steps_per_epoch == steps_per_epoch
    assert p.total_steps == trainer.estimated_stepping_batches == trainer.global_step == 2 * steps_per_epoch
    out = capsys.readouterr().out
    assert "Training plan" in out
    assert "formula N x epochs / (world x B x A)" in out
    assert f"{p.steps_per_epoch} x 2 = {p.total_steps}" in out


def test_printer_raises_when_lightning_counts_differently(cfg_factory, monkeypatch):
    """The check in the printer is live: a plan that disagrees with Lightning stops the fit."""
    read = TrainingPlan.from_trainer.__func__
    off_by_one = classmethod(
        lambda cls, trainer, loader=None: replace(
            read(cls, trainer, loader), max_epochs=trainer.max_epochs + 1
        )
    )
    monkeypatch.setattr(TrainingPlan, "from_trainer", off_by_one)
    cfg = cfg_factory("data=synthetic", "data.num_samples=233", "data.batch_size=20")
    trainer = instantiate(
        cfg.trainer, callbacks=[TrainingPlanPrinter()], logger=False, enable_checkpointing=False
    )
    datamodule = instantiate(cfg.data)
    with pytest.raises(RuntimeError, match="training plan says 30 optimizer steps, Lightning estimates 20"):
        trainer.fit(build_model(cfg.model, datamodule), datamodule=datamodule)


def test_train_prints_plan(cfg_factory, capsys):
    train(cfg_factory("data=synthetic", "data.num_samples=233", "data.batch_size=20", "trainer.max_epochs=1"))
    out = capsys.readouterr().out
    assert "formula N x epochs / (world x B x A)" in out
    assert "ceil(187 / 20) = 10" in out
