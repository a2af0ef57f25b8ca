"""A datamodule for data that fits in memory: subclass it and write ``load()``.

Splitting, standardizing with training-split statistics, whole-batch loading, deterministic
sampling, and the shapes a model is built with (``input_shape``, ``num_outputs``) come with it.
"""

from collections.abc import Sequence

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from litplate.runtime import checks
from litplate.runtime.upstream.lightning_21938_resume_order import DeferredDataLoader


class InMemoryDataset(Dataset):
    """Features and targets held as two tensors.

    ``__getitems__`` lets the DataLoader fetch a batch with one fancy-index per tensor instead of
    ``batch_size`` calls to ``__getitem__`` followed by ``default_collate`` stacking them again; for
    small models that per-sample path costs more than the model itself.
    """

    def __init__(self, features: Tensor, targets: Tensor) -> None:
        if len(features) != len(targets):
            raise ValueError(f"{len(features)} feature rows but {len(targets)} targets")
        self.features = features
        self.targets = targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.features[index], self.targets[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        index = torch.as_tensor(indices)
        return self.features[index], self.targets[index]


def keep_batch(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """collate_fn for ``InMemoryDataset``: the batch is already stacked (module level: workers pickle it)."""
    return batch


class ArrayDataModule(L.LightningDataModule):
    """Base class: subclasses implement ``load()`` returning ``(features, targets)``.

    Integer targets are class labels (``num_outputs`` = number of classes), floating ones are
    regression targets (``num_outputs`` = targets per sample). ``input_shape`` is one sample's
    feature shape. Both come from the data, so a model config never repeats them.

    The training sampler is a ``DistributedSampler`` even on one device: its order is a pure function
    of ``(seed, epoch)``, so a resumed run replays exactly the epochs it would have seen, where
    ``RandomSampler`` draws from the global RNG that checkpoints do not restore. Lightning sees a
    ``DistributedSampler`` already in place and leaves it alone under DDP.
    """

    def __init__(
        self,
        batch_size: int = 64,
        eval_batch_size: int = 512,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        seed: int = 0,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = True,
        standardize_targets: bool = False,
    ) -> None:
        super().__init__()
        self.batch_size = checks.integer("batch_size", batch_size, minimum=1)
        self.eval_batch_size = checks.integer("eval_batch_size", eval_batch_size, minimum=1)
        self.val_fraction = checks.fraction("val_fraction", val_fraction)
        self.test_fraction = checks.fraction("test_fraction", test_fraction)
        if val_fraction + test_fraction >= 1:
            raise checks.ArgumentError.of(
                "test_fraction", test_fraction, f"a number below 1 - val_fraction = {1 - val_fraction:g}"
            )
        self.seed = checks.integer("seed", seed, minimum=-(2**63))
        self.num_workers = checks.integer("num_workers", num_workers)
        self.pin_memory = checks.flag("pin_memory", pin_memory)
        self.persistent_workers = checks.flag("persistent_workers", persistent_workers)
        self.standardize_targets = checks.flag("standardize_targets", standardize_targets)
        self.train_set: InMemoryDataset | None = None
        self.val_set: InMemoryDataset | None = None
        self.test_set: InMemoryDataset | None = None

    def load(self) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    # ---- shapes ----------------------------------------------------------------------------------

    @property
    def input_shape(self) -> tuple[int, ...]:
        self.setup()
        return tuple(self.train_set.features.shape[1:])

    @property
    def num_outputs(self) -> int:
        self.setup()
        targets = self.train_set.targets
        if targets.is_floating_point():
            return 1 if targets.ndim == 1 else targets.shape[1]
        return int(max(t.targets.max() for t in (self.train_set, self.val_set, self.test_set) if len(t))) + 1

    # ---- splits ----------------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        features, targets = self.load()
        features = features.float()
        order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(self.seed))
        n_val = round(len(targets) * self.val_fraction)
        n_test = round(len(targets) * self.test_fraction)
        test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
        # Statistics from the training split only, so validation and test stay unseen.
        features = (features - features[train].mean(0)) / features[train].std(0).clamp_min(1e-6)
        if self.standardize_targets and targets.is_floating_point():
            targets = (targets - targets[train].mean(0)) / targets[train].std(0).clamp_min(1e-6)
        self.train_set = InMemoryDataset(features[train], targets[train])
        self.val_set = InMemoryDataset(features[val], targets[val])
        self.test_set = InMemoryDataset(features[test], targets[test])

    # ---- loaders ---------------------------------------------------------------------------------

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def _loader(self, dataset: InMemoryDataset, batch_size: int, sampler=None) -> DataLoader:
        return DeferredDataLoader(  # see there: exact data order after a resume with workers
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            collate_fn=keep_batch,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and self.num_workers > 0,
            # Its own generator: creating an iterator draws a worker base seed, which would
            # otherwise come from the global RNG and shift dropout masks after a resume.
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        self.setup()
        world_size, rank = self._world()
        sampler = DistributedSampler(
            self.train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=self.seed
        )
        return self._loader(self.train_set, self.batch_size, sampler)

    def val_dataloader(self) -> DataLoader:
        self.setup()
        return self._loader(self.val_set, self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        self.setup()
        return self._loader(self.test_set, self.eval_batch_size)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()
