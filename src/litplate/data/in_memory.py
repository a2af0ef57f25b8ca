"""A dataset of in-memory tensors that the DataLoader indexes one whole batch at a time."""

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset


class InMemoryDataset(Dataset):
    """Features and labels held as two tensors.

    ``__getitems__`` lets the DataLoader fetch a batch with one fancy-index per tensor instead of
    ``batch_size`` calls to ``__getitem__`` followed by ``default_collate`` stacking them again; for
    small models that per-sample path costs more than the model itself.
    """

    def __init__(self, features: Tensor, labels: Tensor) -> None:
        if len(features) != len(labels):
            raise ValueError(f"{len(features)} feature rows but {len(labels)} labels")
        self.features = features
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.features[index], self.labels[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        index = torch.as_tensor(indices)
        return self.features[index], self.labels[index]


def keep_batch(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """collate_fn for ``InMemoryDataset``: the batch is already stacked.

    Defined at module level so that DataLoader workers can pickle it.
    """
    return batch
