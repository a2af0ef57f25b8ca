"""Fully connected net: Flatten, then Linear -> ReLU -> Dropout blocks, then a Linear head."""

import math
from collections.abc import Sequence

from torch import nn

from litplate.models.nets import mlp_args


class MLP(nn.Sequential):
    @mlp_args.MLP.check
    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        hidden: Sequence[int] | int = (256, 256),
        dropout: float = 0.1,
    ) -> None:
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, num_outputs))
        super().__init__(*layers)
