"""NonFiniteLossGuard's arguments, checked by it and, before torch loads, by train.py."""

from typing import Any

from litplate.runtime import checks
from litplate.runtime.arguments import Arguments


def check_every_n_steps(name: str, value: Any) -> int | None:
    """None: on the steps the loggers write (``trainer.log_every_n_steps``)."""
    return None if value is None else checks.integer(name, value, minimum=1)


NonFiniteLossGuard = Arguments(check_every_n_steps=check_every_n_steps)
