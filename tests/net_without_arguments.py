"""A net that checks its arguments in its constructor only, with no ``*_args`` module beside it."""

import math
from collections.abc import Sequence

from torch import nn

from litplate.runtime import checks


class Net(nn.Sequential):
    def __init__(
        self, input_shape: Sequence[int], num_outputs: int, hidden: Sequence[int] = (), dropout: float = 0.0
    ) -> None:
        dropout = checks.fraction("dropout", dropout)
        super().__init__(nn.Flatten(), nn.Dropout(dropout), nn.Linear(math.prod(input_shape), num_outputs))
