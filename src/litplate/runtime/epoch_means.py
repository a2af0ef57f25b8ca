"""Epoch means weighted by batch size, reduced across ranks."""

import torch
from torch import Tensor
from torchmetrics import Metric


class WeightedMeans(Metric):
    """Sample-weighted means of several per-batch values, kept as one state vector.

    A partial last batch counts by its size, not as a whole batch, and ``compute()`` sums the
    totals of every rank first, so each rank gets the same global mean. One vector update per step
    instead of one metric per value keeps the per-step cost to a single small kernel.
    """

    full_state_update = False

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = list(names)
        self.add_state("totals", torch.zeros(len(self.names)), dist_reduce_fx="sum")
        self.add_state("weight", torch.zeros(()), dist_reduce_fx="sum")

    def update(self, values: Tensor, weight: int) -> None:
        self.totals += values.detach() * weight
        self.weight += weight

    def compute(self) -> dict[str, Tensor]:
        return dict(zip(self.names, self.totals / self.weight, strict=True))
