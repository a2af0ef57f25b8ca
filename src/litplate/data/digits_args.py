"""DigitsDataModule's arguments: ArrayDataModule's, checked before torch loads (``runtime/arguments.py``)."""

from litplate.runtime import datamodule_args
from litplate.runtime.arguments import Arguments

DigitsDataModule = Arguments(datamodule_args.ArrayDataModule)
