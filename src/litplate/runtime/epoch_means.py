"""Epoch means weighted by batch size, reduced across ranks."""

import torch
from torch import Tensor


class WeightedMeans:
    """Sample-weighted means of several per-batch values, kept as one vector on the values' device.

    A partial last batch counts by its size, not as a whole batch, and ``compute()`` sums the
    totals of every rank first, so each rank gets the same global mean. An update is three small
    kernels and no other bookkeeping: it runs every training step (a torchmetrics ``Metric`` costs
    about 10 microseconds more per update in its wrapper, more than the kernels).

    Plain tensors, not module buffers: DDP broadcasts a module's buffers from rank 0 at every
    forward, which would replace each rank's own sums with rank 0's. Not in ``state_dict`` either:
    an epoch starts from zero, resumed or not.
    """

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)
        self.totals = torch.zeros(len(self.names))
        self.weight = torch.zeros(())

    def update(self, values: Tensor, weight: int) -> None:
        if self.totals.device != values.device:  # the first step on an accelerator: zeros made there,
            self.totals = values.new_zeros(len(self.names))  # not copied over (a copy would sync)
            self.weight = values.new_zeros(())
        self.totals.add_(values.detach() * weight)
        self.weight.add_(weight)

    def compute(self) -> dict[str, Tensor]:
        """The means over every rank (a collective: call it on all of them)."""
        sums = torch.cat([self.totals, self.weight.unsqueeze(0)])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(sums)  # sum over ranks, on every rank
        return dict(zip(self.names, sums[:-1] / sums[-1], strict=True))

    def reset(self) -> None:
        self.totals.zero_()
        self.weight.zero_()
