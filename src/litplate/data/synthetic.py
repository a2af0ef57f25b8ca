"""Generated classification data of any size, for benchmarks and throughput runs."""

import torch
from torch import Tensor

from litplate.data import synthetic_args
from litplate.runtime.datamodule import ArrayDataModule


class SyntheticDataModule(ArrayDataModule):
    """Gaussian features labelled by a fixed random linear teacher, so the task is learnable.

    ``label_noise`` flips that fraction of labels at random, which caps the reachable accuracy and
    gives regularization something to do.
    """

    @synthetic_args.SyntheticDataModule.check
    def __init__(
        self,
        num_samples: int = 20_000,
        num_features: int = 64,
        num_classes: int = 10,
        label_noise: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.num_samples = num_samples
        self.num_features = num_features
        self.num_classes = num_classes
        self.label_noise = label_noise

    @property
    def num_outputs(self) -> int:
        return self.num_classes  # not from the labels: a small sample may miss a class

    def load(self) -> tuple[Tensor, Tensor]:
        gen = torch.Generator().manual_seed(self.seed)
        features = torch.randn(self.num_samples, self.num_features, generator=gen)
        teacher = torch.randn(self.num_features, self.num_classes, generator=gen)
        labels = (features @ teacher).argmax(1)
        flip = torch.rand(self.num_samples, generator=gen) < self.label_noise
        labels[flip] = torch.randint(self.num_classes, (int(flip.sum()),), generator=gen)
        return features, labels
