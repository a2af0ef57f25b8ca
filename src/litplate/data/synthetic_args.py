"""SyntheticDataModule's arguments, checked by it and, before torch loads, by train.py."""

from functools import partial

from litplate.runtime import checks, datamodule_args
from litplate.runtime.arguments import Arguments

SyntheticDataModule = Arguments(
    datamodule_args.ArrayDataModule,
    num_samples=partial(checks.integer, minimum=1),
    num_features=partial(checks.integer, minimum=1),
    num_classes=partial(checks.integer, minimum=2),
    label_noise=checks.fraction,
)
