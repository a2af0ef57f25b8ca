"""Datamodules: the split and loader plumbing every one shares, and ``ArrayDataModule`` for data in memory.

``SplitDataModule`` holds what does not depend on where samples come from: batch sizes, split
fractions and seed, the worker settings, the training sampler and the one method that builds a
``DataLoader`` (``make_loader``: change the loader class there and every datamodule follows).
``ArrayDataModule`` adds ``load()``-returns-tensors on top; ``litplate.data.image_folder`` adds
image files.
"""

from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from litplate.runtime import datamodule_args
from litplate.runtime.upstream.lightning_unsized_prefetch_resume import TrainedPositionDataLoader


def split_indices(n: int, val_fraction: float, test_fraction: float, seed: int) -> dict[str, Tensor]:
    """Indices of ``train``, ``val`` and ``test`` in a random order that is a function of ``seed`` only."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = round(n * val_fraction)
    n_test = round(n * test_fraction)
    return {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}


class SplitDataModule(L.LightningDataModule):
    """Base class: subclasses fill ``train_set``, ``val_set`` and ``test_set`` in ``setup()``.

    The training sampler is a ``DistributedSampler`` even on one device: its order is a pure function
    of ``(seed, epoch)``, so a resumed run replays exactly the epochs it would have seen, where
    ``RandomSampler`` draws from the global RNG that checkpoints do not restore. Lightning sees a
    ``DistributedSampler`` already in place and leaves it alone under DDP.
    """

    collate_fn: Callable[[Any], Any] | None = None  # None: torch's default_collate

    @datamodule_args.SplitDataModule.check
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
        prefetch_factor: int | None = 2,
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.prefetch_factor = prefetch_factor
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    def split(self, n: int) -> dict[str, Tensor]:
        return split_indices(n, self.val_fraction, self.test_fraction, self.seed)

    # ---- loaders ---------------------------------------------------------------------------------

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def train_sampler(self, dataset: Dataset) -> DistributedSampler:
        world_size, rank = self._world()
        return DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=self.seed)

    def make_loader(
        self, dataset: Dataset, batch_size: int, sampler=None, persistent: bool | None = None
    ) -> DataLoader:
        """Every DataLoader of every datamodule is built here (``persistent=False`` for a one-off pass).

        ``prefetch_factor`` (batches each worker loads ahead) only exists with workers: with
        ``num_workers=0`` nothing loads ahead, and torch refuses the argument, so it is dropped.
        """
        workers = self.num_workers > 0
        persistent = self.persistent_workers if persistent is None else persistent
        return TrainedPositionDataLoader(  # see there and its base: exact data order after a resume
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            collate_fn=self.collate_fn,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=persistent and workers,
            prefetch_factor=self.prefetch_factor if workers else None,
            # Its own generator: creating an iterator draws a worker base seed, which would
            # otherwise come from the global RNG and shift dropout masks after a resume.
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return self.make_loader(self.train_set, self.batch_size, self.train_sampler(self.train_set))

    def val_dataloader(self) -> DataLoader:
        self.setup()
        return self.make_loader(self.val_set, self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        self.setup()
        return self.make_loader(self.test_set, self.eval_batch_size)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()


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


class ArrayDataModule(SplitDataModule):
    """Base class for data in memory: subclasses implement ``load()`` returning ``(features, targets)``.

    Integer targets are class labels (``num_outputs`` = number of classes), floating ones are
    regression targets (``num_outputs`` = targets per sample). ``input_shape`` is one sample's
    feature shape. Both come from the data, so a model config never repeats them.
    """

    collate_fn = staticmethod(keep_batch)

    @datamodule_args.ArrayDataModule.check
    def __init__(self, standardize_targets: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.standardize_targets = standardize_targets
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
        parts = self.split(len(targets))
        train = parts["train"]
        # Statistics from the training split only, so validation and test stay unseen.
        features = (features - features[train].mean(0)) / features[train].std(0).clamp_min(1e-6)
        if self.standardize_targets and targets.is_floating_point():
            targets = (targets - targets[train].mean(0)) / targets[train].std(0).clamp_min(1e-6)
        self.train_set = InMemoryDataset(features[train], targets[train])
        self.val_set = InMemoryDataset(features[parts["val"]], targets[parts["val"]])
        self.test_set = InMemoryDataset(features[parts["test"]], targets[parts["test"]])
