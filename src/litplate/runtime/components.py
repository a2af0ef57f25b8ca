"""Objects built from config nodes; whatever a constructor refuses comes back naming the config key."""

from collections.abc import Mapping
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate

from litplate.runtime.errors import ConfigError, first_line


def build(node: Mapping[str, Any], key: str, **kwargs: Any) -> Any:
    """``instantiate(node, **kwargs)``; a refusal becomes a ``ConfigError`` under ``key``.

    A component's own ``ArgumentError`` already names its argument (``dropout``); this adds where
    the component sits (``model.net``). Other refusals (a torch optimizer's ``ValueError``, an
    unknown keyword, a ``_target_`` that does not import) keep their first line, prefixed by the key.
    """
    try:
        return instantiate(node, **kwargs)
    except ConfigError as error:  # a component's own check, or a nested build's
        raise error.under(key) from None
    except InstantiationException as error:  # Hydra's own: the target, or the whitelist
        if str(error).startswith("Error locating target"):
            target = node.get("_target_") if isinstance(node, Mapping) else None
            raise ConfigError(f"={target!r} cannot be imported", f"{key}._target_") from None
        raise ConfigError(first_line(error), key) from error
    except Exception as error:  # what the constructor refused (Hydra 1.4 passes it on unwrapped)
        raise ConfigError(first_line(error), key) from error


def build_group(group: Mapping[str, Any] | None, key: str) -> list[Any]:
    """Every entry of a dict group (``callbacks``, ``logger``) that has a ``_target_``; nulls are skipped.

    A dict (not a list) lets users switch one entry off (``~callbacks.lr_monitor``) or add one
    (``+callbacks.mine._target_=pkg.Class``) from the command line by name.
    """
    if not group:
        return []
    return [
        build(entry, f"{key}.{name}")
        for name, entry in group.items()
        if isinstance(entry, Mapping) and "_target_" in entry
    ]
