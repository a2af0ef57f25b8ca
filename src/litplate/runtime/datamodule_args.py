"""SplitDataModule's and ArrayDataModule's arguments, checked without importing torch.

Every datamodule has these: its own ``*_args`` module builds on them (``data/synthetic_args.py``).
"""

from functools import partial
from typing import Any

from litplate.runtime import checks
from litplate.runtime.arguments import Arguments
from litplate.runtime.errors import ArgumentError


def prefetch_factor(name: str, value: Any) -> int | None:
    return None if value is None else checks.integer(name, value, minimum=1)


def leave_training_samples(values: dict[str, Any]) -> None:
    """The validation and test fractions together leave something to train on."""
    if "val_fraction" in values and "test_fraction" in values:
        val, test = values["val_fraction"], values["test_fraction"]
        if val + test >= 1:
            raise ArgumentError.of("test_fraction", test, f"a number below 1 - val_fraction = {1 - val:g}")


SplitDataModule = Arguments(
    batch_size=partial(checks.integer, minimum=1),
    eval_batch_size=partial(checks.integer, minimum=1),
    val_fraction=checks.fraction,
    test_fraction=checks.fraction,
    seed=partial(checks.integer, minimum=-(2**63)),
    num_workers=checks.integer,
    pin_memory=checks.flag,
    persistent_workers=checks.flag,
    prefetch_factor=prefetch_factor,
    together=leave_training_samples,
)
ArrayDataModule = Arguments(SplitDataModule, standardize_targets=checks.flag)
