"""What a run imports and loads on its way to the first step: only what it uses.

Times are for ``scripts/bench/bench_startup.py``; these tests check what the times rest on.
"""

import re

import numpy as np
import torch
from conftest import run_script
from sklearn.datasets import load_digits

from litplate.data.digits import DigitsDataModule

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
