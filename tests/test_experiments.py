"""Every experiment and debug preset composes and trains one short epoch; so do the main group options.

Experiments are found by globbing conf/, so a new one is covered without touching this file.
"""

import math
from pathlib import Path

import pytest
from omegaconf import DictConfig

from litplate.cli import CONFIG_DIR
from litplate.train import train

EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))
DEBUG_PRESETS = sorted(p.stem for p in (Path(CONFIG_DIR) / "debug").glob("*.yaml"))
SHORT = [
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=3",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
]


def shrink(cfg: DictConfig) -> DictConfig:
    """Generated data sets are made small; everything else stays as the experiment has it."""
    if "num_samples" in cfg.data:
        cfg.data.num_samples = min(cfg.data.num_samples, 2000)
    return cfg


def check_ran(metrics: dict[str, float]) -> None:
    assert math.isfinite(metrics["train/loss_epoch"])
    assert 0.0 <= metrics["test/acc"] <= 1.0


def test_there_is_something_to_test():
    assert len(EXPERIMENTS) >= 2
    assert {"fast", "overfit", "profiler"} <= set(DEBUG_PRESETS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_runs_one_short_epoch(cfg_factory, tmp_path, name):
    cfg = shrink(cfg_factory(f"+experiment={name}", *SHORT))
    assert cfg.trainer.max_epochs == 1
    check_ran(train(cfg))
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "config_tree.log").is_file()


@pytest.mark.parametrize("name", DEBUG_PRESETS)
def test_debug_preset_runs(cfg_factory, tmp_path, name):
    cfg = cfg_factory(f"+debug={name}", *SHORT)
    if name == "overfit":
        assert cfg.trainer.overfit_batches > 0
    check_ran(train(cfg))
    if name == "fast":  # fast_dev_run writes no checkpoints
        assert not (tmp_path / "checkpoints").exists()


def test_cnn(cfg_factory, tmp_path):
    cfg = cfg_factory("model=cnn", *SHORT)
    assert cfg.model.net._target_.endswith("CNN")
    check_ran(train(cfg))
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_csv_logger(cfg_factory, tmp_path):
    check_ran(train(cfg_factory("logger=csv", *SHORT)))
    header = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/loss_epoch", "val/acc", "lr-AdamW"} <= set(header)
    assert not (tmp_path / "tensorboard").exists()


def test_cpu_trainer(cfg_factory):
    cfg = cfg_factory("trainer=cpu", *SHORT)
    assert cfg.trainer.accelerator == "cpu"
    check_ran(train(cfg))
