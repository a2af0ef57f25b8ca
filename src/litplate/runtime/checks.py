"""Argument checks for component constructors: each raises ``ArgumentError`` naming the argument.

A component checks its own arguments, so a new net or datamodule gets the same one-line errors
(``model.net.dropout=1.5 is not allowed: use a number in [0, 1)``) without editing any central
table: the builder that instantiated it adds the config path (``runtime.components.build``).
Which check applies to which argument is declared in the component's ``*_args`` module
(``runtime/arguments.py``), so ``train()`` applies the same checks before torch loads.
"""

from collections.abc import Sequence
from typing import Any

from litplate.runtime.errors import ArgumentError


def is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def integer(name: str, value: Any, minimum: int = 0) -> int:
    if not (is_int(value) and value >= minimum):
        raise ArgumentError.of(name, value, f"an integer >= {minimum}")
    return value


def number(name: str, value: Any, minimum: float = 0.0, strict: bool = False) -> float:
    """A number >= ``minimum`` (> with ``strict``)."""
    if not (is_number(value) and (value > minimum if strict else value >= minimum)):
        raise ArgumentError.of(name, value, f"a number {'>' if strict else '>='} {minimum:g}")
    return float(value)


def fraction(name: str, value: Any, closed: bool = False) -> float:
    """A number in [0, 1) (or [0, 1] when ``closed``)."""
    if not (is_number(value) and value >= 0 and (value <= 1 if closed else value < 1)):
        raise ArgumentError.of(name, value, f"a number in [0, 1{']' if closed else ')'}")
    return float(value)


def open_unit(name: str, value: Any) -> float:
    if not (is_number(value) and 0 < value < 1):
        raise ArgumentError.of(name, value, "a number in (0, 1)")
    return float(value)


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ArgumentError.of(name, value, "true or false")
    return value


def one_of(name: str, value: Any, allowed: Sequence[Any]) -> Any:
    if value not in allowed:
        raise ArgumentError.of(name, value, "one of " + ", ".join(map(str, allowed)))
    return value


def sizes(name: str, value: Any, minimum: int = 1) -> list[int]:
    """One size or a list of them, each an integer >= ``minimum`` (``hidden=128`` or ``hidden=[256,256]``)."""
    values = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]
    if not values or not all(is_int(v) and v >= minimum for v in values):
        raise ArgumentError.of(name, value, f"an integer >= {minimum}, or a list of them")
    return values
