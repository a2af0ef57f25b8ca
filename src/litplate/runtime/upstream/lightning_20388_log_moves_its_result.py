"""Workaround: every ``self.log`` call moves the value's result object to the device, even when it is
already there (Lightning #20388; fix proposed in PR #21769, open).

``_ResultCollection.log`` calls ``_ResultMetric.to(value.device)`` on every call, and that ``to``
rebuilds the metric's whole ``__dict__`` with ``apply_to_collection``, deep-copying its metadata,
whether or not anything has to move. Here that is 0.21 ms of the 0.25 ms one ``self.log`` costs in
a loop, and 0.4-0.8 ms inside a training step of the digits MLP, whose whole step takes ~3 ms.

``stay_where_they_are(trainer)``: each tensor result the active loop has logged becomes a
``ResultStaysOnItsDevice``, whose ``to`` returns it unchanged when asked for the device that all its
states are on; any other move or cast is Lightning's. ``TaskModule.log`` calls it after each
``self.log``, so Lightning's walk runs on a name's first call only. ``tests/test_upstream.py`` shows
that Lightning's ``to`` still copies the metadata of a result that does not move; when that test
fails, delete this module and ``TaskModule.log``.
"""

from typing import Any

import torch
from lightning.pytorch.trainer.connectors.logger_connector.result import _ResultMetric


class ResultStaysOnItsDevice(_ResultMetric):
    """Lightning's result object; a move to the device its states are on is a no-op."""

    def to(self, *args: Any, **kwargs: Any) -> _ResultMetric:
        device = args[0] if len(args) == 1 and not kwargs else None
        if isinstance(device, torch.device) and all(s.device == device for s in self.metric_state.values()):
            return self
        return super().to(*args, **kwargs)


def stay_where_they_are(trainer: Any) -> None:
    """The active loop's logged tensor results, made ``ResultStaysOnItsDevice`` (once each)."""
    results = getattr(trainer, "_results", None)  # None outside a loop, and without a trainer
    for result in (results or {}).values():
        if type(result) is _ResultMetric and result.is_tensor:
            result.__class__ = ResultStaysOnItsDevice
