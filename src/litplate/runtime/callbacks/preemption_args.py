"""PreemptionCheckpoint's arguments, checked by it and, before torch loads, by train.py."""

from typing import Any

from litplate.runtime.arguments import Arguments
from litplate.runtime.errors import ArgumentError


def filename(name: str, value: Any) -> str:
    if not (isinstance(value, str) and value):
        raise ArgumentError.of(name, value, "a non-empty file name")
    return value


def requeue_signal(name: str, value: Any) -> str | None:
    if value is not None and value not in ("SIGUSR1", "SIGUSR2"):
        raise ArgumentError.of(name, value, "SIGUSR1, SIGUSR2 or null")
    return value


PreemptionCheckpoint = Arguments(filename=filename, requeue_signal=requeue_signal)
