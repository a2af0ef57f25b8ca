"""Trainer arguments checked here, before torch loads: those Lightning takes without a check, and
the everyday ones whose bad values it refuses only once it is imported (~4 s later).

Lightning divides by ``accumulate_grad_batches`` and ``check_val_every_n_epoch`` mid-fit, and
ignores a negative ``gradient_clip_val``. It refuses a zero ``devices``, ``num_nodes`` below 1,
``max_epochs`` or ``max_steps`` below -1, a ``limit_*_batches`` outside [0, 1] that is not a
whole number, a ``precision``, ``accelerator`` or ``strategy`` it has no name for and a
``gradient_clip_algorithm`` other than norm or value, but only when the Trainer is built. Each rule
here refuses no value Lightning takes (``tests/test_early_checks.py`` builds a Trainer with each side
of every boundary); ``devices`` strings and lists are left to Lightning, whose accelerators read them
differently, and so is whether a named device, strategy or precision can run here. Lightning's class,
not ours, so its ``_target_`` does not lead here: ``train()`` and ``assembly.build_trainer`` name
these rules.
"""

from collections.abc import Mapping
from functools import partial
from typing import Any

from litplate.runtime import checks
from litplate.runtime.arguments import Arguments
from litplate.runtime.errors import ArgumentError


def check_val_every_n_epoch(name: str, value: Any) -> int | None:
    return None if value is None else checks.integer(name, value, minimum=1)


def gradient_clip_val(name: str, value: Any) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
        raise ArgumentError.of(name, value, "null or a number >= 0")
    return value


def devices(name: str, value: Any) -> Any:
    """An integer must be >= 1, or -1 (every device); 'auto', strings and id lists are Lightning's."""
    if checks.is_int(value) and (value == 0 or value < -1):
        raise ArgumentError.of(name, value, "an integer >= 1, -1 (all devices), 'auto', or device ids")
    return value


def max_steps(name: str, value: Any) -> int:
    if not (checks.is_int(value) and value >= -1):
        raise ArgumentError.of(name, value, "-1 (no limit) or an integer >= 0")
    return value


def max_epochs(name: str, value: Any) -> int | None:
    if value is None:  # Lightning's default: 1000 epochs unless max_steps is set
        return None
    if not (checks.is_int(value) and value >= -1):
        raise ArgumentError.of(name, value, "null, -1 (no limit) or an integer >= 0")
    return value


def batch_limit(name: str, value: Any) -> float | int | None:
    """A fraction of the batches in [0, 1], or a whole number of batches (5 or 5.0)."""
    if value is None:
        return None
    if not (checks.is_number(value) and value >= 0 and (value <= 1 or float(value).is_integer())):
        raise ArgumentError.of(name, value, "null, a fraction in [0, 1] or a whole number of batches")
    return value


# Lightning 2.6's precision names (lightning.fabric.plugins.precision.precision), then its aliases.
PRECISIONS = (
    "32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true",
    "transformer-engine", "transformer-engine-float16",
)  # fmt: skip
PRECISION_ALIASES = (16, 32, 64, "16", "32", "64", "bf16")


def precision(name: str, value: Any) -> Any:
    """A name Lightning knows; whether it can run here (transformer-engine's package) is Lightning's."""
    named = isinstance(value, str) or checks.is_int(value)  # not 32.0: Lightning refuses floats
    if value is None or (named and value in PRECISIONS + PRECISION_ALIASES):
        return value
    raise ArgumentError.of(name, value, f"null or one of {', '.join(PRECISIONS)} (or 16, 32, 64, bf16)")


# The names in Lightning 2.6's AcceleratorRegistry and StrategyRegistry, which only Lightning's own
# modules fill (tests/test_early_checks.py compares them). A class of one's own is given as a
# ``_target_`` node, which these rules leave to be built.
ACCELERATORS = ("auto", "cpu", "cuda", "gpu", "mps", "tpu")
STRATEGIES = (
    "auto", "ddp", "ddp_spawn", "ddp_fork", "ddp_notebook", "ddp_find_unused_parameters_false",
    "ddp_find_unused_parameters_true", "ddp_spawn_find_unused_parameters_false",
    "ddp_spawn_find_unused_parameters_true", "ddp_fork_find_unused_parameters_false",
    "ddp_fork_find_unused_parameters_true", "ddp_notebook_find_unused_parameters_false",
    "ddp_notebook_find_unused_parameters_true", "deepspeed", "deepspeed_stage_1", "deepspeed_stage_2",
    "deepspeed_stage_2_offload", "deepspeed_stage_3", "deepspeed_stage_3_offload",
    "deepspeed_stage_3_offload_nvme", "fsdp", "fsdp_cpu_offload", "single_device", "single_xla",
    "xla_debug", "xla", "single_tpu",
)  # fmt: skip


def accelerator(name: str, value: Any) -> Any:
    """A name Lightning knows, in its case (it refuses 'CPU'), or an Accelerator's ``_target_`` node."""
    if isinstance(value, Mapping) or (isinstance(value, str) and value in ACCELERATORS):
        return value
    raise ArgumentError.of(name, value, f"one of {', '.join(ACCELERATORS)}, or a _target_ node")


def strategy(name: str, value: Any) -> Any:
    """A name Lightning knows, in any case, or a Strategy's ``_target_`` node."""
    if isinstance(value, Mapping) or (isinstance(value, str) and value.lower() in STRATEGIES):
        return value
    raise ArgumentError.of(name, value, f"one of {', '.join(STRATEGIES)}, or a _target_ node")


def gradient_clip_algorithm(name: str, value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value.lower() in ("norm", "value")):
        return value
    raise ArgumentError.of(name, value, "null, norm or value")


Trainer = Arguments(
    accumulate_grad_batches=partial(checks.integer, minimum=1),
    check_val_every_n_epoch=check_val_every_n_epoch,
    gradient_clip_val=gradient_clip_val,
    gradient_clip_algorithm=gradient_clip_algorithm,
    precision=precision,
    accelerator=accelerator,
    strategy=strategy,
    devices=devices,
    num_nodes=partial(checks.integer, minimum=1),
    max_epochs=max_epochs,
    max_steps=max_steps,
    **{f"limit_{split}_batches": batch_limit for split in ("train", "val", "test", "predict")},
)
