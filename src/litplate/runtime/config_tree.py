"""The composed config as a rich tree: printed at start and saved next to the run.

It sits between the imports and the first step, so it is built cheaply: libyaml dumps the plain
containers (``OmegaConf.to_yaml`` would rebuild each as a config first, ~10x slower), and a
one-line pattern colours the keys (pygments' YAML lexer costs tens of ms to load and run).
"""

import re
from pathlib import Path
from typing import Any

import rich.text
import rich.tree
import yaml
from rich.console import Console

FIRST = ("data", "model", "callbacks", "logger", "trainer", "paths")
KEY = re.compile(r"^[ -]*[^\s:#][^:\n]*:(?=\s|$)", re.MULTILINE)
Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # PyYAML built without libyaml has only the latter


def config_tree(config: dict[str, Any]) -> rich.tree.Tree:
    """The resolved run config (plain containers), one branch per top-level key."""
    tree = rich.tree.Tree("CONFIG", guide_style="dim")
    keys = [k for k in FIRST if k in config] + [k for k in config if k not in FIRST]
    for key in keys:
        value = config[key]
        if isinstance(value, dict | list):
            text = yaml.dump(value, Dumper=Dumper, sort_keys=False, allow_unicode=True).rstrip("\n")
        else:
            text = str(value)
        body = rich.text.Text(text)
        body.highlight_regex(KEY, style="cyan")
        tree.add(str(key), style="bold").add(body)
    return tree


def print_and_save(config: dict[str, Any], path: Path) -> None:
    tree = config_tree(config)
    Console().print(tree)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        Console(file=f, width=120, color_system=None).print(tree)
