"""scikit-learn's bundled digits: 1,797 8x8 grey images of 0-9, shipped with the package (no download)."""

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from litplate.runtime.datamodule import ArrayDataModule


def digits_file() -> Path:
    """The CSV scikit-learn's ``load_digits`` reads, found without importing scikit-learn.

    Importing ``sklearn.datasets`` takes longer than everything else a run does between
    ``import lightning`` and its first step; ``tests/test_startup.py`` checks that this file holds
    exactly what ``load_digits()`` returns, so a scikit-learn that moves it fails there.
    """
    return Path(importlib.util.find_spec("sklearn").origin).parent / "datasets" / "data" / "digits.csv.gz"


class DigitsDataModule(ArrayDataModule):
    def load(self) -> tuple[Tensor, Tensor]:
        data = np.loadtxt(digits_file(), delimiter=",")  # one row per image: 64 pixels, then the digit
        images = torch.from_numpy(data[:, :-1]).float().view(-1, 1, 8, 8)  # (N, 1, 8, 8): one channel
        return images, torch.from_numpy(data[:, -1].astype(np.int64))
