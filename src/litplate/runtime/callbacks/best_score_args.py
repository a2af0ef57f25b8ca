"""BestScore's arguments, checked by it and, before torch loads, by train.py."""

from typing import Any

from litplate.runtime.arguments import Arguments
from litplate.runtime.errors import ArgumentError


def monitor(name: str, value: Any) -> str:
    if not (isinstance(value, str) and value):
        raise ArgumentError.of(name, value, "a metric name")
    return value


def mode(name: str, value: Any) -> str:
    if value not in ("min", "max"):
        raise ArgumentError.of(name, value, "'min' or 'max'")
    return value


BestScore = Arguments(mode=mode, monitor=monitor)
