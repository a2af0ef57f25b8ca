"""The composed config as a rich tree: printed at start and saved next to the run."""

from pathlib import Path
from typing import Any

import rich.syntax
import rich.tree
from omegaconf import OmegaConf
from rich.console import Console

FIRST = ("data", "model", "callbacks", "logger", "trainer", "paths")


def config_tree(config: dict[str, Any]) -> rich.tree.Tree:
    """The resolved run config (plain containers), one branch per top-level key."""
    tree = rich.tree.Tree("CONFIG", guide_style="dim")
    keys = [k for k in FIRST if k in config] + [k for k in config if k not in FIRST]
    for key in keys:
        branch = tree.add(str(key), style="bold")
        value = config[key]
        text = OmegaConf.to_yaml(value) if isinstance(value, dict | list) else str(value)
        branch.add(rich.syntax.Syntax(text, "yaml"))
    return tree


def print_and_save(config: dict[str, Any], path: Path) -> None:
    tree = config_tree(config)
    Console().print(tree)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        Console(file=f, width=120, color_system=None).print(tree)
