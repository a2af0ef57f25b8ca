"""Shared fixtures: compose configs in-process, or run the real entry points as subprocesses."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from litplate.runtime.app import CONFIG_DIR
from litplate.runtime.assembly import build_model, build_trainer
from litplate.runtime.components import build_group

ROOT = Path(__file__).resolve().parents[1]

# Small and quick: no progress bar redraws, two epochs, CPU.
FAST = ["trainer.max_epochs=2", "trainer.accelerator=cpu", "trainer.enable_progress_bar=false"]


def make_cfg(output_dir: Path, overrides: list[str], config_name: str = "train") -> DictConfig:
    """Compose a config as ``python train.py OVERRIDES`` would, with its output under ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        del cfg.hydra
    return cfg


@pytest.fixture
def cfg_factory(tmp_path):
    def factory(*overrides: str, config_name: str = "train") -> DictConfig:
        return make_cfg(
            tmp_path, [*FAST, *overrides] if config_name == "train" else list(overrides), config_name
        )

    yield factory
    GlobalHydra.instance().clear()


@pytest.fixture
def fit():
    """Fit a composed config as ``train()`` does, with extra callbacks, and return the trainer."""

    def run(cfg: DictConfig, *callbacks: L.Callback) -> L.Trainer:
        L.seed_everything(cfg.seed, workers=True, verbose=False)  # as train() does: tests run in any order
        loggers = build_group(cfg.get("logger"), "logger")
        callbacks_ = build_group(cfg.get("callbacks"), "callbacks") + list(callbacks)
        trainer = build_trainer(cfg.trainer, callbacks_, loggers)
        datamodule = instantiate(cfg.data)
        trainer.fit(build_model(cfg.model, datamodule), datamodule=datamodule)
        return trainer

    return run


def run_script(script: str, *args: str, cwd: Path = ROOT, timeout: int = 600, env: dict | None = None):
    """Run ``python SCRIPT ARGS`` as a user would; returns the CompletedProcess (text output)."""
    # The caller's env wins; the test runner's own HYDRA_FULL_ERROR must not leak into the child.
    full_env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    full_env |= {"PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_image_folder(path: Path, classes: int = 3, per_class: int = 24, size: int = 12) -> Path:
    """A small class-per-folder PNG set written by ``scripts/make_image_folder.py`` (the digits)."""
    spec = importlib.util.spec_from_file_location(
        "make_image_folder", ROOT / "scripts" / "make_image_folder.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.write_digits(path, classes=classes, per_class=per_class, size=size)
    return path


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    """72 grey 12x12 PNGs of the digits 0-2, shared by the tests that only read it."""
    return write_image_folder(tmp_path_factory.mktemp("images") / "digits")
