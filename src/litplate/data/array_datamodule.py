"""Shared split, standardization and loaders for datasets that fit in memory."""

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler

from litplate.data.deferred_loader import DeferredDataLoader
from litplate.data.in_memory import InMemoryDataset, keep_batch


class ArrayDataModule(L.LightningDataModule):
    """Base class: subclasses implement ``load()`` returning ``(features, labels)``.

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
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.num_workers = num_workers
        self.train_set: InMemoryDataset | None = None
        self.val_set: InMemoryDataset | None = None
        self.test_set: InMemoryDataset | None = None

    def load(self) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        features, labels = self.load()
        features = features.float()
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.seed))
        n_val = round(len(labels) * self.val_fraction)
        n_test = round(len(labels) * self.test_fraction)
        test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
        # Statistics from the training split only, so validation and test stay unseen.
        mean = features[train].mean(0)
        std = features[train].std(0).clamp_min(1e-6)
        features = (features - mean) / std
        self.train_set = InMemoryDataset(features[train], labels[train])
        self.val_set = InMemoryDataset(features[val], labels[val])
        self.test_set = InMemoryDataset(features[test], labels[test])

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
            persistent_workers=self.num_workers > 0,
            # Its own generator: creating an iterator draws a worker base seed, which would
            # otherwise come from the global RNG and shift dropout masks after a resume.
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None, "call setup() first"
        world_size, rank = self._world()
        sampler = DistributedSampler(
            self.train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=self.seed
        )
        return self._loader(self.train_set, self.batch_size, sampler)

    def val_dataloader(self) -> DataLoader:
        assert self.val_set is not None, "call setup() first"
        return self._loader(self.val_set, self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        assert self.test_set is not None, "call setup() first"
        return self._loader(self.test_set, self.eval_batch_size)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()
