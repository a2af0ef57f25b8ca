"""Epoch means weighted by batch size, reduced across ranks."""

import torch
from torch import Tensor


class WeightedMeans:
    """Sample-weighted means of several per-batch values, kept as one vector on the values' device.

    A partial last batch counts by its size, not as a whole batch, and ``compute()`` sums the
    totals of every rank first, so each rank gets the same global mean. An update is one in-place
    kernel (``totals += weight * values``) and an integer addition on the host: it runs every
    training step (a torchmetrics ``Metric`` costs about 10 microseconds more per update in its
    wrapper, more than the kernel). The sample count is a host integer: the host knows each batch's
    size, and counting it on the device would be one more kernel a step.

    Plain tensors, not module buffers: DDP broadcasts a module's buffers from rank 0 at every
    forward, which would replace each rank's own sums with rank 0's. A checkpoint written mid-epoch
    holds every rank's partial sums (``state_dict``, gathered), so that a run resumed there ends the
    epoch with the same mean, bit for bit; one written at an epoch's end holds zeros.
    """

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)
        self.totals = torch.zeros(len(self.names))
        self.weight = 0  # samples counted in totals, on this rank

    def update(self, values: Tensor, weight: int) -> None:
        if self.totals.device != values.device:  # the first step on an accelerator (a host-to-device
            self.totals = self.totals.to(values.device)  # copy, once; it keeps resumed sums)
        self.totals.add_(values.detach(), alpha=weight)
        self.weight += weight

    def _sums(self) -> Tensor:
        """Totals and sample count as one vector on the totals' device."""
        return torch.cat([self.totals, self.totals.new_tensor([self.weight])])

    def compute(self) -> dict[str, Tensor]:
        """The means over every rank (a collective: call it on all of them)."""
        sums = self._sums()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(sums)  # sum over ranks, on every rank
        return dict(zip(self.names, sums[:-1] / sums[-1], strict=True))

    def reset(self) -> None:
        self.totals.zero_()
        self.weight = 0

    def state_dict(self) -> dict[str, Tensor | list[str]]:
        """Every rank's partial sums, one row per rank (a collective under DDP: all ranks call it,
        as they all take part in writing a checkpoint)."""
        sums = self._sums()
        rows = [sums]
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rows = [torch.empty_like(sums) for _ in range(torch.distributed.get_world_size())]
            torch.distributed.all_gather(rows, sums)
        return {"names": self.names, "per_rank": torch.stack(rows).cpu()}

    def load_state_dict(self, state: dict) -> None:
        """This rank's row; with another number of ranks, rank 0 takes the sum of all rows (the same
        mean, up to rounding) and the others start from zero."""
        if list(state["names"]) != self.names:
            raise ValueError(f"epoch means of {state['names']}, not of {self.names}")
        rows: Tensor = state["per_rank"]
        rank, world = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        if len(rows) == world:
            row = rows[rank]
        elif rank == 0:
            row = rows.sum(0)
        else:
            row = torch.zeros_like(rows[0])
        self.totals = row[:-1].to(self.totals.device).clone()
        self.weight = int(row[-1])  # a sum of batch sizes
