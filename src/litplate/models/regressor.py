"""Regression: mean squared error on the net's outputs; MSE, MAE and R^2 as metrics."""

import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MeanAbsoluteError, MeanSquaredError, Metric, R2Score

from litplate.runtime.module import TaskModule


class Regressor(TaskModule):
    """``num_outputs`` targets per sample (from the datamodule); one target is a vector, not a column."""

    def forward(self, x: Tensor) -> Tensor:
        outputs = self.net(x)
        return outputs.squeeze(-1) if self.num_outputs == 1 else outputs

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return F.mse_loss(outputs, targets)

    def metrics(self) -> dict[str, Metric]:
        return {
            "mse": MeanSquaredError(),
            "mae": MeanAbsoluteError(),
            "r2": R2Score(multioutput="uniform_average"),
        }

    def predictions(self, outputs: Tensor) -> dict[str, Tensor]:
        return {"prediction": outputs}
