"""Names a package exports, each imported from its own module on first use (PEP 562).

``litplate.models``, ``litplate.models.nets``, ``litplate.data`` and ``litplate.runtime.callbacks``
export their classes this way, so importing one of their light modules (a component's ``*_args``
module, see ``runtime/arguments.py``) does not import every class of the package, and torch with them.
"""

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, homes: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``homes`` maps each exported name to its module there."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{homes[name]}"), name)

    return __getattr__
