"""DiabetesDataModule's arguments: ArrayDataModule's, checked before torch loads."""

from litplate.runtime import datamodule_args
from litplate.runtime.arguments import Arguments

DiabetesDataModule = Arguments(datamodule_args.ArrayDataModule)
