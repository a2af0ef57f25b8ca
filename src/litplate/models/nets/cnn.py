"""Small convolutional classifier with BatchNorm, for flat image vectors such as 8x8 digits."""

from collections.abc import Sequence

from torch import Tensor, nn


class CNN(nn.Module):
    """Conv-BN-ReLU blocks (a 2x2 max-pool after each but the first), then a dropout MLP head.

    Takes flat vectors and reshapes them to ``image_shape``, so it shares datamodules with the MLP.
    Convolutions have no bias: the BatchNorm after them has its own shift.
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (1, 8, 8),
        channels: Sequence[int] = (32, 64),
        hidden: int = 128,
        num_classes: int = 10,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
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
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x.view(-1, *self.image_shape)))
