"""The step arithmetic from epoch / batch / iteration, computed exactly and checked against Lightning.

    optimizer steps = N x epochs / (devices x nodes x batch size x gradient accumulation)

holds only for exact division. What really happens, per epoch and per rank:

    samples per rank   = ceil(N / world)             (DistributedSampler pads by repeating samples)
    batches per rank   = ceil(samples per rank / B)  (the last batch may be partial)
    steps per epoch    = ceil(batches per rank / A)  (Lightning steps on a partial last window)

so "step = iteration" only when A = 1: an iteration is one micro-batch, a step one optimizer update.
"""

import math
from dataclasses import dataclass

from rich.table import Table


@dataclass(frozen=True)
class TrainingPlan:
    num_samples: int
    batch_size: int
    world_size: int
    num_nodes: int
    accumulation: int
    max_epochs: int
    drop_last: bool = False  # the DataLoader drops a partial last batch
    sampler_drop_last: bool = False  # the DistributedSampler drops the tail instead of padding
    limit_batches: int | float | None = None  # Trainer(limit_train_batches): a count or a fraction
    max_steps: int = -1  # Trainer(max_steps): stops earlier than max_epochs when >= 0

    @property
    def samples_per_rank(self) -> int:
        if self.sampler_drop_last:
            return self.num_samples // self.world_size
        return math.ceil(self.num_samples / self.world_size)

    @property
    def loader_batches(self) -> int:
        """Batches the train loader yields per epoch on each rank, before ``limit_train_batches``."""
        if self.drop_last:
            return self.samples_per_rank // self.batch_size
        return math.ceil(self.samples_per_rank / self.batch_size)

    @property
    def batches_per_epoch(self) -> int:
        """Micro-batches (iterations) per epoch on each rank."""
        batches = self.loader_batches
        if isinstance(self.limit_batches, int):
            return min(batches, self.limit_batches)
        if isinstance(self.limit_batches, float):
            return int(batches * self.limit_batches)  # Lightning rounds a fraction down
        return batches

    @property
    def effective_batch_size(self) -> int:
        return self.world_size * self.batch_size * self.accumulation

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.batches_per_epoch / self.accumulation)

    @property
    def epoch_steps(self) -> int:
        """Steps that ``max_epochs`` alone allows (-1: no epoch limit)."""
        return self.steps_per_epoch * self.max_epochs if self.max_epochs >= 0 else -1

    @property
    def total_steps(self) -> int:
        """Optimizer steps the run takes: what ``max_epochs`` allows, cut by ``max_steps``."""
        if self.max_steps < 0:
            return self.epoch_steps
        return self.max_steps if self.epoch_steps < 0 else min(self.epoch_steps, self.max_steps)

    @property
    def formula_steps(self) -> float:
        """The seed notes' formula, unrounded, to show how far the real count is from it."""
        return self.num_samples * self.max_epochs / self.effective_batch_size

    def batch_sizes(self) -> list[int]:
        """Size of every micro-batch of an epoch on one rank (the last one may be smaller)."""
        sizes = [self.batch_size] * self.batches_per_epoch
        tail = self.samples_per_rank - self.batch_size * (self.batches_per_epoch - 1)
        if sizes and not self.drop_last and tail < self.batch_size:
            sizes[-1] = tail
        return sizes

    @classmethod
    def from_trainer(cls, trainer, loader=None) -> "TrainingPlan":
        """Read the plan off a trainer whose train dataloader is set up (e.g. in ``on_fit_start``),
        or off ``loader`` for a trainer that has not started (the world size is the trainer's)."""
        loader = loader if loader is not None else trainer.train_dataloader
        sampler = loader.sampler
        limit = trainer.limit_train_batches
        return cls(
            num_samples=len(sampler.dataset) if hasattr(sampler, "dataset") else len(loader.dataset),
            # None when Lightning rebuilt the loader around its batch sampler (overfit_batches)
            batch_size=loader.batch_size or loader.batch_sampler.batch_size,
            world_size=trainer.world_size,
            num_nodes=trainer.num_nodes,
            accumulation=trainer.accumulate_grad_batches,
            max_epochs=trainer.max_epochs if trainer.max_epochs is not None else -1,
            max_steps=trainer.max_steps,
            drop_last=loader.drop_last,
            sampler_drop_last=getattr(sampler, "drop_last", False),
            limit_batches=None if limit == 1.0 and isinstance(limit, float) else limit,
        )

    def _total_text(self) -> str:
        by_epochs = f"{self.steps_per_epoch} x {self.max_epochs}"
        if self.max_steps < 0:
            return f"{by_epochs} = {self.total_steps:,}"
        if self.epoch_steps < 0:
            return f"max_steps = {self.total_steps:,}"
        return f"min({by_epochs}, max_steps {self.max_steps}) = {self.total_steps:,}"

    def table(self) -> Table:
        n, world, b, a = self.num_samples, self.world_size, self.batch_size, self.accumulation
        devices = f"{world // self.num_nodes} x {self.num_nodes}"
        split = "floor" if self.sampler_drop_last else "ceil"
        batching = "floor" if self.drop_last else "ceil"
        t = Table(title="Training plan", show_header=False, title_justify="left")
        rows = [
            ("samples N", f"{n:,}"),
            ("batch per device B", str(b)),
            ("devices x nodes", f"{devices} = {world}"),
            ("gradient accumulation A", str(a)),
            ("effective batch (world x B x A)", f"{self.effective_batch_size:,}"),
            ("samples per rank", f"{split}({n} / {world}) = {self.samples_per_rank:,}"),
            (
                "batches (iterations) per epoch per rank",
                f"{batching}({self.samples_per_rank} / {b}) = {self.loader_batches:,}",
            ),
            ("optimizer steps per epoch", f"ceil({self.batches_per_epoch} / {a}) = {self.steps_per_epoch:,}"),
            ("epochs", str(self.max_epochs) if self.max_epochs >= 0 else "no limit"),
            ("total optimizer steps", self._total_text()),
        ]
        if self.max_epochs >= 0:
            rows.append(("formula N x epochs / (world x B x A)", f"{self.formula_steps:,.2f} (unrounded)"))
        if self.limit_batches is not None:
            limited = (
                f"min({self.loader_batches}, {self.limit_batches})"
                if isinstance(self.limit_batches, int)
                else f"int({self.loader_batches} x {self.limit_batches})"
            )
            rows.insert(7, ("limit_train_batches", f"{limited} = {self.batches_per_epoch:,}"))
        for row in rows:
            t.add_row(*row)
        return t
