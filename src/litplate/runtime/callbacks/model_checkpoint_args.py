"""ModelCheckpoint's counts and mode, which Lightning refuses only once imported: checked before it
loads, by train.py, and by the template's ModelCheckpoint (``model_checkpoint.py``) when built.

Lightning's other rules (at most one of the step, epoch and time triggers; a ``save_top_k`` above 1
needs a ``monitor``) stay Lightning's, reported when the callback is built.
"""

from functools import partial
from typing import Any

from litplate.runtime import checks
from litplate.runtime.arguments import Arguments


def optional_count(name: str, value: Any) -> int | None:
    return None if value is None else checks.integer(name, value, minimum=0)


ModelCheckpoint = Arguments(
    save_top_k=partial(checks.integer, minimum=-1),
    every_n_train_steps=optional_count,
    every_n_epochs=optional_count,
    mode=partial(checks.one_of, allowed=("min", "max")),
)
