"""ImageFolderDataModule's arguments, checked by it and, before torch loads, by train.py."""

from typing import Any

from litplate.runtime import checks, image_folder_args
from litplate.runtime.arguments import Arguments
from litplate.runtime.errors import ArgumentError


def image_size(name: str, value: Any) -> list[int]:
    """One size (square) or ``[height, width]``."""
    size = checks.sizes(name, value)
    if len(size) > 2:
        raise ArgumentError.of(name, value, "one size, or [height, width]")
    return size


ImageFolderDataModule = Arguments(
    image_folder_args.ClassFolderDataModule,
    image_size=image_size,
    flip=checks.flag,
    crop_padding=checks.integer,
)
