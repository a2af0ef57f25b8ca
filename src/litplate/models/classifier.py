"""Classification: cross-entropy on the net's logits, accuracy as the metric."""

import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.classification import MulticlassAccuracy

from litplate.runtime.module import TaskModule


class Classifier(TaskModule):
    """``num_outputs`` classes (from the datamodule); the net returns one logit per class."""

    train_terms = ("acc",)
    min_outputs = 2
    outputs_needed = "data with integer labels of at least 2 classes (float targets: model=regressor)"

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(outputs, targets)

    def metrics(self) -> dict[str, Metric]:
        return {"acc": MulticlassAccuracy(self.num_outputs, average="micro")}

    def batch_terms(self, outputs: Tensor, targets: Tensor) -> tuple[Tensor]:
        return ((outputs.argmax(1) == targets).float().mean(),)

    def predictions(self, outputs: Tensor) -> dict[str, Tensor]:
        return {"prediction": outputs.argmax(1), "prob": outputs.softmax(1)}
