"""Every experiment and debug preset composes and trains one short epoch; so do the main group options.

Experiments are found by globbing conf/, so a new one is covered without touching this file. What a
run must have tested comes from its own model (a classifier logs test/acc, a regressor test/mse...).
"""

import math
from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import DictConfig

from litplate.runtime.app import CONFIG_DIR
from litplate.runtime.assembly import build_model
from litplate.train import train

EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))
DEBUG_PRESETS = sorted(p.stem for p in (Path(CONFIG_DIR) / "debug").glob("*.yaml"))
SHORT = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
]


def shrink(cfg: DictConfig, image_folder: Path) -> DictConfig:
    """Generated data sets are made small, image folders a small generated one; everything else stays
    as the experiment has it."""
    if "num_samples" in cfg.data:
        cfg.data.num_samples = min(cfg.data.num_samples, 2000)
    if "root" in cfg.data:
        cfg.data.root = str(image_folder)
    return cfg


# Ranges of the metrics the shipped models log; any other metric must at least be finite.
BOUNDS = {
    "loss": (0.0, math.inf),
    "acc": (0.0, 1.0),
    "mse": (0.0, math.inf),
    "mae": (0.0, math.inf),
    "r2": (-math.inf, 1.0),
}


def expected_test_metrics(cfg: DictConfig) -> list[str]:
    """``test/<name>`` for every evaluation metric of the model this config builds."""
    names = list(build_model(cfg.model, instantiate(cfg.data)).evaluation_directions())
    assert "loss" in names and len(names) > 1, names  # the loss and at least one task metric
    return [f"test/{name}" for name in names]


def check_ran(cfg: DictConfig, metrics: dict[str, float]) -> None:
    assert math.isfinite(metrics["train/loss_epoch"])
    expected = expected_test_metrics(cfg)
    assert sorted(k for k in metrics if k.startswith("test/")) == sorted(expected)
    for key in expected:
        low, high = BOUNDS.get(key.removeprefix("test/"), (-math.inf, math.inf))
        assert math.isfinite(metrics[key]) and low <= metrics[key] <= high, (key, metrics[key])


def test_there_is_something_to_test():
    assert len(EXPERIMENTS) >= 2
    assert {"fast", "overfit", "profiler"} <= set(DEBUG_PRESETS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_runs_one_short_epoch(cfg_factory, tmp_path, image_folder, name):
    cfg = shrink(cfg_factory(f"+experiment={name}", *SHORT), image_folder)
    assert cfg.trainer.max_epochs == 1
    check_ran(cfg, train(cfg))
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "config_tree.log").is_file()


@pytest.mark.parametrize("name", DEBUG_PRESETS)
def test_debug_preset_runs(cfg_factory, tmp_path, name):
    cfg = cfg_factory(f"+debug={name}", *SHORT)
    if name == "overfit":
        assert cfg.trainer.overfit_batches > 0
    check_ran(cfg, train(cfg))
    if name == "fast":  # fast_dev_run writes no checkpoints
        assert not (tmp_path / "checkpoints").exists()


def test_cnn(cfg_factory, tmp_path):
    cfg = cfg_factory("model/net=cnn", *SHORT)
    assert cfg.model.net._target_.endswith("CNN")
    check_ran(cfg, train(cfg))
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_csv_logger(cfg_factory, tmp_path):
    cfg = cfg_factory("logger=csv", *SHORT)
    check_ran(cfg, train(cfg))
    header = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/loss_epoch", "val/acc", "lr-AdamW"} <= set(header)
    assert not (tmp_path / "tensorboard").exists()


def test_cpu_trainer(cfg_factory):
    cfg = cfg_factory("trainer=cpu", *SHORT)
    assert cfg.trainer.accelerator == "cpu"
    check_ran(cfg, train(cfg))
