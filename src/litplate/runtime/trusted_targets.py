"""The ``_target_``s a config read from a checkpoint may name: classes of trusted packages only.

A checkpoint is untrusted input. ``torch.load(weights_only=True)`` stops its pickle from running
code, but eval.py and predict.py then *instantiate* the run config stored inside it, and any
``_target_`` there is an import path Hydra would call: ``shutil.copyfile`` or ``torch.save`` write
files as well as ``os.system`` runs commands. So before anything is built from such a config, every
``_target_`` at any depth (``_args_``, lists, ``_partial_`` entries included) must be

1. a string starting with a trusted prefix, checked before anything is imported; and
2. a *class* whose own module starts with a trusted prefix, checked after importing it: a path
   such as ``torch.nn.functional.torch.save`` starts like a trusted one but resolves to a function
   of another module, and a trusted package's functions (``torch.nn.init.*``, this package's
   ``atomic_torch_save``) are not what configs build.

Hydra 1.4's execution whitelist is the boundary while building: ``checkpoint_configs()`` allows
only these packages, and Hydra checks each target where it is imported and called (aliases such
as ``torch.nn.modules.module.torch.load`` resolve to what they are). ``check_targets`` runs first,
over the whole config, so that a refused checkpoint builds nothing at all, and it admits classes
only: a trusted package's functions (``torch.nn.init.*``, this package's ``atomic_torch_save``,
which writes files) pass a package whitelist but are not what configs build.

The user's own configs and command line are trusted (``user_configs()``). Extra prefixes for a
project's own packages: the ``trusted_targets`` config key (a list).
"""

import importlib
import inspect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from hydra.utils import UNSAFE_DISABLE_EXECUTION_CHECKS, execution_whitelist

from litplate.runtime.errors import ConfigError

PACKAGE = __name__.split(".")[0]  # this project's package, whatever ``make rename`` called it
TRUSTED = (
    f"{PACKAGE}.",
    "torch.nn.",
    "torch.optim.",
    "torchmetrics.",
    "lightning.pytorch.callbacks.",
    "lightning.pytorch.loggers.",
)


def targets(config: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every ``(key path, _target_ value)`` in a plain config, at any depth."""
    if isinstance(config, Mapping):
        for key, value in config.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "_target_":
                yield where, value
            else:
                yield from targets(value, where)
    elif isinstance(config, Sequence) and not isinstance(config, str | bytes):
        for i, value in enumerate(config):
            yield from targets(value, f"{path}[{i}]")


def _resolve(target: str) -> Any:
    """Import the longest importable module prefix of ``target`` and get the rest as attributes."""
    parts = target.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(target)


def why_untrusted(target: Any, trusted: Sequence[str]) -> str | None:
    """None for a trusted class; otherwise what is wrong with ``target``."""
    if not isinstance(target, str):
        return f"a {type(target).__name__}, not an import path"
    if not target.startswith(tuple(trusted)):
        return "outside the trusted packages"
    try:
        obj = _resolve(target)
    except (ImportError, AttributeError):
        return "not importable"
    if not inspect.isclass(obj):
        return f"a {type(obj).__name__}, not a class"
    if not f"{obj.__module__}.".startswith(tuple(trusted)):
        return f"a class of {obj.__module__}, outside the trusted packages"
    return None


def check_targets(config: Any, source: str, extra: Iterable[str] = (), key: str = "ckpt_path") -> None:
    """Raise a one-line ``ConfigError`` for the first ``_target_`` that is not a trusted class."""
    trusted = (*TRUSTED, *extra)
    for path, target in targets(config):
        reason = why_untrusted(target, trusted)
        if reason is not None:
            raise ConfigError(
                f"refused to build from {source}: {path}={target!r} is {reason} (trusted: "
                f"{', '.join(p + '*' for p in trusted)}; trusted_targets=[...] adds prefixes)",
                key,
            )


def user_configs() -> Any:
    """Context in which the user's own configs build: any importable target, as they are trusted.

    Hydra 1.4 warns on every build without an execution whitelist (1.5 will refuse), so trusted
    code has to say which configs it trusts; a ``checkpoint_configs()`` inside this one still limits.
    """
    return execution_whitelist(UNSAFE_DISABLE_EXECUTION_CHECKS)


def checkpoint_configs(extra: Iterable[str] = ()) -> Any:
    """Context in which a config read from a checkpoint builds: trusted packages only, whatever
    an outer context allows (``reset``)."""
    return execution_whitelist([f"{prefix}*" for prefix in (*TRUSTED, *extra)], reset=True)
