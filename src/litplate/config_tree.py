"""The composed config as a rich tree: printed at start and saved next to the run."""

from pathlib import Path

import rich.syntax
import rich.tree
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

FIRST = ("data", "model", "callbacks", "logger", "trainer", "paths")


def config_tree(cfg: DictConfig) -> rich.tree.Tree:
    tree = rich.tree.Tree("CONFIG", guide_style="dim")
    keys = [k for k in FIRST if k in cfg] + [k for k in cfg if k not in FIRST]
    for key in keys:
        branch = tree.add(str(key), style="bold")
        value = cfg[key]
        text = OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        branch.add(rich.syntax.Syntax(text, "yaml"))
    return tree


def print_and_save(cfg: DictConfig, path: Path) -> None:
    tree = config_tree(cfg)
    Console().print(tree)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        Console(file=f, width=120, color_system=None).print(tree)
