"""Installed from a wheel (no checkout), the package still finds its configs and trains."""

import os
import subprocess
import sys

import pytest
from test_rename import copy_of_repo


@pytest.mark.slow
def test_a_wheel_install_finds_its_configs_outside_the_checkout(tmp_path):
    wheel_dir, target, work = tmp_path / "dist", tmp_path / "site", tmp_path / "elsewhere"
    work.mkdir()
    source = copy_of_repo(tmp_path / "source")  # a build writes build/ into the tree it builds
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheel_dir, source], check=True)
    (wheel,) = wheel_dir.glob("*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", target, wheel], check=True)
    assert (target / "litplate" / "conf" / "train.yaml").is_file()  # a copy, not the checkout's link
    assert not (target / "litplate" / "conf").is_symlink()

    env = {**os.environ, "PYTHONPATH": str(target)}  # ahead of the editable install's path entry
    where = subprocess.run(
        [sys.executable, "-c", "from litplate.runtime.app import CONFIG_DIR; print(CONFIG_DIR)"],
        cwd=work, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert where.stdout.strip() == str(target / "litplate" / "conf")
    done = subprocess.run(
        [sys.executable, "-m", "litplate.train", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
         "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false"],
        cwd=work, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert list((work / "logs" / "train" / "runs").glob("*/checkpoints/last.ckpt"))
