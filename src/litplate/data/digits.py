"""scikit-learn's bundled digits: 1,797 8x8 grey images of 0-9, shipped with the package (no download)."""

import torch
from torch import Tensor

from litplate.data.array_datamodule import ArrayDataModule


class DigitsDataModule(ArrayDataModule):
    num_features = 64
    num_classes = 10

    def load(self) -> tuple[Tensor, Tensor]:
        from sklearn.datasets import load_digits  # imported here: scikit-learn is slow to import

        digits = load_digits()
        return torch.from_numpy(digits.data).float(), torch.from_numpy(digits.target).long()
