"""Fully connected classifier: Linear -> ReLU -> Dropout blocks."""

from collections.abc import Sequence

from torch import nn


class MLP(nn.Sequential):
    def __init__(
        self,
        in_features: int = 64,
        hidden: Sequence[int] | int = (256, 256),
        num_classes: int = 10,
        dropout: float = 0.1,
    ) -> None:
        if isinstance(hidden, int):  # `model.net.hidden=128` from the command line: one layer
            hidden = [hidden]
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)
