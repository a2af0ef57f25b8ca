"""What a run imports and loads on its way to the first step: only what it uses.

Times are for ``scripts/bench/bench_startup.py``; these tests check what the times rest on.
"""

import gc
import re
import sys

import numpy as np
import torch
from conftest import ROOT, run_script
from sklearn.datasets import load_digits

from litplate.data.digits import DigitsDataModule
from litplate.runtime.heavy_imports import import_torch_and_lightning

IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", re.MULTILINE)


def test_the_digits_are_what_scikit_learn_loads():
    # DigitsDataModule reads scikit-learn's own file without importing scikit-learn: a release
    # that moves or changes the file fails here.
    images, labels = DigitsDataModule().load()
    digits = load_digits()
    assert images.dtype == torch.float32 and labels.dtype == torch.int64
    assert images.shape == (1797, 1, 8, 8)
    assert np.array_equal(images.squeeze(1).numpy(), digits.images)
    assert np.array_equal(labels.numpy(), digits.target)


def test_a_default_run_does_not_import_scikit_learn(tmp_path):
    result = run_script(
        "train.py",
        "trainer.max_steps=1",
        "test=false",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
        env={"PYTHONPROFILEIMPORTTIME": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {name.split(".")[0] for name in IMPORTED.findall(result.stderr)}
    assert {"torch", "lightning", "hydra"} <= imported
    assert "sklearn" not in imported
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()  # it did train


def test_a_run_freezes_what_importing_torch_made_and_trains_with_the_collector_on(tmp_path):
    # runtime/heavy_imports.py: torch and Lightning import with the collector off (~1 s less), and
    # what they made is frozen; training itself runs with the collector on, as the user left it.
    result = run_script(
        "train.py",
        "trainer.max_steps=1",
        "test=false",
        "trainer.enable_progress_bar=false",
        "+callbacks.gc_probe._target_=gc_probe.GcProbe",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT / "tests")},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    probe = re.search(r"gc-probe enabled=(\w+) frozen=(\d+)", result.stdout)
    assert probe is not None, result.stdout[-2000:]
    assert probe[1] == "True"
    assert int(probe[2]) > 100_000  # torch and Lightning's modules, classes and functions


def test_with_torch_already_imported_nothing_is_frozen():
    # A notebook or a test session: the user's objects stay collectable.
    assert "torch" in sys.modules
    frozen = gc.get_freeze_count()
    import_torch_and_lightning()
    assert gc.get_freeze_count() == frozen
    assert gc.isenabled()
