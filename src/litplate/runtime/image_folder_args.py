"""ClassFolderDataModule's arguments, checked without importing torch (``runtime/arguments.py``).

The root is checked on disk here too: a missing folder is found before torch loads.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from litplate.runtime import checks, datamodule_args
from litplate.runtime.arguments import Arguments
from litplate.runtime.errors import ArgumentError

MODES = {1: "L", 3: "RGB"}  # channels -> Pillow mode


def root(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ArgumentError.of(name, value, "a folder path (the folder holding one folder per class)")
    if not Path(value).expanduser().is_dir():
        raise ArgumentError(
            f"={value!r} is not a folder (relative paths start at {Path.cwd()}); to make a "
            f"class-per-folder PNG set to try: python scripts/make_image_folder.py {value}",
            name,
        )
    return value


def split_file(name: str, value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ArgumentError.of(name, value, "null or a file path")
    return value


def channels(name: str, value: Any) -> int:
    return checks.one_of(name, value, tuple(MODES))


def _channel_values(name: str, value: Any, channels: int, positive: bool) -> list[float] | None:
    if value is None:
        return None
    values = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]
    ok = len(values) == channels and all(
        isinstance(v, int | float) and not isinstance(v, bool) and (v > 0 if positive else True)
        for v in values
    )
    if not ok:
        allowed = f"null or a list of {channels} number{'s' if channels > 1 else ''}"
        raise ArgumentError.of(name, value, allowed + (" > 0" if positive else "") + " (one per channel)")
    return [float(v) for v in values]


def channel_statistics(values: dict[str, Any]) -> None:
    """``mean`` and ``std``: both or neither, one number per channel each (checked once ``channels`` is)."""
    if "channels" not in values:
        return
    for name, positive in (("mean", False), ("std", True)):
        if name in values:
            values[name] = _channel_values(name, values[name], values["channels"], positive)
    mean, std = values.get("mean"), values.get("std")
    if "mean" in values and "std" in values and (mean is None) != (std is None):
        missing = "std" if mean is not None else "mean"
        raise ArgumentError.of(missing, None, "a list as well: give both mean and std, or neither")


ClassFolderDataModule = Arguments(
    datamodule_args.SplitDataModule,
    root=root,
    split_file=split_file,
    channels=channels,
    verify=checks.flag,
    together=channel_statistics,
)
