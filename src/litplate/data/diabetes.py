"""scikit-learn's bundled diabetes data: 442 patients, 10 measurements, disease progression a year on."""

import torch
from torch import Tensor

from litplate.runtime.datamodule import ArrayDataModule


class DiabetesDataModule(ArrayDataModule):
    """A regression task: float targets, so ``num_outputs`` is 1 and the model predicts one number."""

    def load(self) -> tuple[Tensor, Tensor]:
        from sklearn.datasets import load_diabetes

        data = load_diabetes(scaled=False)
        return torch.from_numpy(data.data).float(), torch.from_numpy(data.target).float()
