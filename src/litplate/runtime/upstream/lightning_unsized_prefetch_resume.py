"""Workaround: a mid-epoch checkpoint of a loader without ``len()`` skips a batch on resume (Lightning).

Lightning's training fetcher (``loops/fetchers.py``, ``_PrefetchDataFetcher``) fetches one batch
ahead when the loader has no length (an ``IterableDataset`` without ``__len__``), to know which batch
is the epoch's last (Lightning PR 12101). The loader's ``state_dict()`` then counts that fetched,
not yet trained, batch, and a run resumed from a checkpoint taken there never trains on it. Here
such a loader reports its position before the latest fetch while one is pending: the batches the
training steps got. Loaders with a length are left alone: Lightning does not fetch ahead for them.
``tests/test_upstream.py`` checks that a plain ``StatefulDataLoader`` still skips the batch; when it
no longer does, make ``runtime/datamodule.py`` build ``DeferredDataLoader`` again and delete this.
"""

from collections.abc import Iterator
from typing import Any

from torchdata.stateful_dataloader import StatefulDataLoader

from litplate.runtime.upstream.lightning_21938_resume_order import DeferredDataLoader


class _KeepsPositionBeforeFetch(Iterator):
    def __init__(self, loader: "TrainedPositionDataLoader", batches: Iterator) -> None:
        self._loader = loader
        self._batches = batches
        self._started = False  # before the first batch the loader's iterator may not exist yet

    def __next__(self) -> Any:
        before = StatefulDataLoader.state_dict(self._loader) if self._started else None
        self._started = True
        try:
            batch = next(self._batches)
        except StopIteration:  # nothing fetched ahead any more: the position is the loader's own
            self._loader.pending_position = None
            raise
        self._loader.pending_position = before
        return batch


class TrainedPositionDataLoader(DeferredDataLoader):
    """``state_dict()`` is the position after the batches handed to training steps, not those fetched.

    Costs one ``state_dict()`` per batch, and only for loaders without a length.
    """

    pending_position: dict[str, Any] | None = None

    def __iter__(self) -> Iterator:
        batches = super().__iter__()
        self.pending_position = None
        try:
            len(self)
        except TypeError:
            return _KeepsPositionBeforeFetch(self, batches)
        return batches

    def state_dict(self) -> dict[str, Any]:
        return self.pending_position if self.pending_position is not None else super().state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.pending_position = None
        super().load_state_dict(state_dict)
