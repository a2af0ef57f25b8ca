"""Build lists of objects from dict-of-config groups such as ``callbacks`` and ``logger``."""

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig


def instantiate_dict(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry that has a ``_target_``; entries set to null are skipped.

    A dict (not a list) lets users switch one entry off (``~callbacks.lr_monitor``) or add one
    (``+callbacks.mine._target_=pkg.Class``) from the command line by name.
    """
    if not group:
        return []
    return [
        instantiate(entry)
        for entry in group.values()
        if isinstance(entry, DictConfig) and "_target_" in entry
    ]
