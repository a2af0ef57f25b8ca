"""Small convolutional net with BatchNorm, for images such as the 8x8 digits."""

from collections.abc import Sequence

from torch import Tensor, nn

from litplate.models.nets import cnn_args
from litplate.runtime.errors import ArgumentError


class CNN(nn.Module):
    """Conv-BN-ReLU blocks (a 2x2 max-pool after each but the first), then a dropout MLP head.

    ``input_shape`` is (channels, height, width); flat inputs of that many values are reshaped.
    Convolutions have no bias: the BatchNorm after them has its own shift.
    """

    @cnn_args.CNN.check
    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        channels: Sequence[int] = (32, 64),
        hidden: int = 128,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ArgumentError.of(
                "input_shape", tuple(input_shape), "(channels, height, width): use data with images"
            )
        self.image_shape = tuple(input_shape)
        in_channels, height, width = self.image_shape
        blocks: list[nn.Module] = []
        for i, out_channels in enumerate(channels):
            if i > 0:
                blocks.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            blocks += [
                nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(),
            ]
            in_channels = out_channels
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(in_channels * height * width, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_outputs),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x.view(-1, *self.image_shape)))
