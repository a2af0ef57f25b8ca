"""Workaround: the first epoch after a resume replays epoch 0's order with loader workers (Lightning #21938).

A DataLoader whose epoch starts at its first batch, so a resumed run gets the resumed epoch's order.
``tests/test_upstream.py`` checks that a plain DataLoader still shows the bug: when it fails, replace
``DeferredDataLoader`` with ``DataLoader`` in ``runtime/datamodule.py`` and delete this module.
"""

from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import DataLoader


class _StartsOnFirstBatch(Iterator):
    def __init__(self, start: Callable[[], Iterator]) -> None:
        self._start: Callable[[], Iterator] | None = start
        self._iterator: Iterator | None = None

    def __next__(self) -> Any:
        if self._iterator is None:
            assert self._start is not None
            self._iterator, self._start = self._start(), None
        return next(self._iterator)


class DeferredDataLoader(DataLoader):
    """``iter()`` returns at once; the real iterator is created when the first batch is asked for.

    With ``num_workers > 0`` creating the iterator already hands the workers the first batches'
    indices, i.e. fixes the epoch's order. When resuming, Lightning creates the training iterator
    before it restores the epoch counter and calls ``sampler.set_epoch``, and does not create it
    again for the first resumed epoch, so that epoch replayed epoch 0's order (Lightning issue 21938).
    Deferred to the first batch, the order is drawn after ``set_epoch``, as in an uninterrupted run.
    """

    def __iter__(self) -> Iterator:
        return _StartsOnFirstBatch(super().__iter__)
