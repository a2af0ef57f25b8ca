"""TaskModule's arguments, checked by TaskModule itself and, before torch loads, by train.py.

``net`` is a component of its own (its ``_target_`` has its own ``*_args`` module); the optimizer
and the scheduler are torch's, which refuse most bad values themselves, in one line, when the
module builds them. What torch takes without a word is checked here.
"""

from collections.abc import Mapping
from functools import partial
from typing import Any

from litplate.runtime import checks
from litplate.runtime.arguments import Arguments
from litplate.runtime.regularization_args import WeightPenalty

# torch refuses a negative learning rate, not a zero one: a run that never learns.
OPTIMIZER = Arguments(lr=partial(checks.number, strict=True))
# torch refuses a bad mode or factor of ReduceLROnPlateau, not these.
PLATEAU = Arguments(patience=checks.integer, cooldown=checks.integer, threshold=checks.number)


def scheduler(name: str, value: Any) -> Any:
    """``PLATEAU``'s checks for ReduceLROnPlateau; other schedulers are left to torch."""
    if isinstance(value, Mapping) and str(value.get("_target_", "")).endswith(".ReduceLROnPlateau"):
        return PLATEAU.nested(name, value)
    return value


TaskModule = Arguments(
    optimizer=OPTIMIZER.nested,
    scheduler=scheduler,
    regularization=WeightPenalty.nested,
    compile=checks.flag,
    channels_last=checks.flag,
)
