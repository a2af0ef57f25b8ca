"""Shared fixtures: compose configs in-process, or run the real entry points as subprocesses."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from litplate.runtime.app import CONFIG_DIR
from litplate.runtime.assembly import build_model, build_trainer
from litplate.runtime.components import build_group
from litplate.runtime.trusted_targets import user_configs

ROOT = Path(__file__).resolve().parents[1]

# Small and quick: no progress bar redraws, two epochs, CPU.
FAST = ["trainer.max_epochs=2", "trainer.accelerator=cpu", "trainer.enable_progress_bar=false"]


def make_cfg(output_dir: Path, overrides: list[str], config_name: str = "train") -> DictConfig:
    """Compose a config as ``python train.py OVERRIDES`` would, with its output under ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        del cfg.hydra
    return cfg


@pytest.fixture(autouse=True)
def trusted_test_configs():
    """Tests build the project's configs directly, as train() does: as trusted configs (Hydra 1.4
    warns about every build outside an execution-whitelist context)."""
    with user_configs():
        yield


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


# ---- comparing checkpoints bit for bit ------------------------------------------------------------

# Checkpoint entries that name the run's own directory, so they differ between any two runs.
PATH_KEYS = {"config"}


def _bytes(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().reshape(-1).view(torch.uint8)


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Paths at which two checkpoint trees are not bitwise equal (tensors: dtype, shape and bits)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and torch.equal(_bytes(a), _bytes(b))
        )
        return [] if same else [where]
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where} keys {sorted(map(str, a.keys() ^ b.keys()))}"]
        return [d for k in a for d in differences(a[k], b[k], f"{where}/{k}")]
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return [f"{where} length"]
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{where}[{i}]")
        ]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def training_state(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Everything a resumed run continues from, minus file paths (ModelCheckpoint keeps its dir).

    Also minus Lightning's count of its own scheduler calls: it skips its (for ReduceLROnPlateau
    disabled, see ``TaskModule.lr_scheduler_step``) call in the epoch it resumes on, so the resumed
    count is one lower per resume. The plateau step itself happens in ``on_train_epoch_end`` and its
    state, the learning rates and the weights are compared in full.
    """
    state = {k: v for k, v in checkpoint.items() if k not in PATH_KEYS}
    state["callbacks"] = {
        k: v
        for k, v in checkpoint["callbacks"].items()
        if not k.startswith(("ModelCheckpoint", "BestCheckpoint", "LastCheckpoint"))
    }
    state["loops"] = {**checkpoint["loops"], "fit_loop": dict(checkpoint["loops"]["fit_loop"])}
    del state["loops"]["fit_loop"]["epoch_loop.scheduler_progress"]
    return state


def assert_same_run(a: dict[str, Any], b: dict[str, Any]) -> None:
    diffs = differences(training_state(a), training_state(b))
    assert not diffs, f"checkpoints differ at {diffs[:10]}"
