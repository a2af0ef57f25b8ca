"""scikit-learn's bundled digits: 1,797 8x8 grey images of 0-9, shipped with the package (no download)."""

import torch
from torch import Tensor

from litplate.runtime.datamodule import ArrayDataModule


class DigitsDataModule(ArrayDataModule):
    def load(self) -> tuple[Tensor, Tensor]:
        from sklearn.datasets import load_digits  # imported here: scikit-learn is slow to import

        digits = load_digits()
        images = torch.from_numpy(digits.images).float().unsqueeze(1)  # (N, 1, 8, 8): one channel
        return images, torch.from_numpy(digits.target).long()
