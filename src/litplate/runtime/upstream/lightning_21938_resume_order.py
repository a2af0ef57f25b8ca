"""Workaround: the first epoch after a resume replays epoch 0's order with loader workers (Lightning #21938).

A DataLoader whose epoch starts at its first batch, so a resumed run gets the resumed epoch's order.
``tests/test_upstream.py`` checks that a plain DataLoader still shows the bug: when it fails, derive
``upstream/lightning_unsized_prefetch_resume.py``'s loader from ``StatefulDataLoader`` and delete this module.
"""

from collections.abc import Callable, Iterator
from typing import Any

from torchdata.stateful_dataloader import StatefulDataLoader


class _StartsOnFirstBatch(Iterator):
    def __init__(self, start: Callable[[], Iterator]) -> None:
        self._start: Callable[[], Iterator] | None = start
        self._iterator: Iterator | None = None

    def __next__(self) -> Any:
        if self._iterator is None:
            assert self._start is not None
            self._iterator, self._start = self._start(), None
        return next(self._iterator)


class DeferredDataLoader(StatefulDataLoader):
    """``iter()`` returns at once; the real iterator is created when the first batch is asked for.

    With ``num_workers > 0`` creating the iterator already hands the workers the first batches'
    indices, i.e. fixes the epoch's order. When resuming, Lightning creates the training iterator
    before it restores the epoch counter and calls ``sampler.set_epoch``, and does not create it
    again for the first resumed epoch, so that epoch replayed epoch 0's order (Lightning issue 21938).
    Deferred to the first batch, the order is drawn after ``set_epoch``, as in an uninterrupted run.

    A ``StatefulDataLoader`` (torchdata) underneath, so that checkpoints record the position in the
    epoch and a run resumed mid-epoch continues with the next batch; a state loaded before the
    first batch is applied when the deferred iterator is created.
    """

    def __iter__(self) -> Iterator:
        return _StartsOnFirstBatch(super().__iter__)
