"""The Trainer arguments Lightning takes without a check, checked here before torch loads.

Lightning divides by ``accumulate_grad_batches`` and ``check_val_every_n_epoch`` mid-fit, and
ignores a negative ``gradient_clip_val``. It refuses the other bad values itself, in one line,
when the Trainer is built (after ``import lightning``). Lightning's class, not ours, so its
``_target_`` does not lead here: ``train()`` and ``assembly.build_trainer`` name these rules.
"""

from functools import partial
from typing import Any

from litplate.runtime import checks
from litplate.runtime.arguments import Arguments
from litplate.runtime.errors import ArgumentError


def check_val_every_n_epoch(name: str, value: Any) -> int | None:
    return None if value is None else checks.integer(name, value, minimum=1)


def gradient_clip_val(name: str, value: Any) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
        raise ArgumentError.of(name, value, "null or a number >= 0")
    return value


Trainer = Arguments(
    accumulate_grad_batches=partial(checks.integer, minimum=1),
    check_val_every_n_epoch=check_val_every_n_epoch,
    gradient_clip_val=gradient_clip_val,
)
