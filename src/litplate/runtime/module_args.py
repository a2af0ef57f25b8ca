"""TaskModule's arguments, checked by TaskModule itself and, before torch loads, by train.py.

``net`` is a component of its own (its ``_target_`` has its own ``*_args`` module). The optimizer
and the scheduler are torch's classes: torch refuses most bad values itself, in one line, but only
when the module builds them, after ``import torch`` (~3.5 s). For the everyday ones, AdamW, Adam,
SGD and ReduceLROnPlateau, torch's rules are repeated here (``tests/test_early_checks.py`` builds
torch's class on each side of every boundary), with what torch takes without a word; other
optimizers and schedulers get the learning-rate check and are otherwise left to torch.
"""

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from litplate.runtime import checks
from litplate.runtime.arguments import Arguments
from litplate.runtime.errors import ArgumentError
from litplate.runtime.regularization_args import WeightPenalty

# torch refuses a negative learning rate, not a zero one: a run that never learns.
OPTIMIZER = Arguments(lr=partial(checks.number, strict=True))


def betas(name: str, value: Any) -> list[float]:
    if not (
        isinstance(value, Sequence)
        and len(value) == 2
        and all(checks.is_number(b) and 0 <= b < 1 for b in value)
    ):
        raise ArgumentError.of(name, value, "two numbers in [0, 1)")
    return list(value)


def nesterov_needs_momentum(values: dict[str, Any]) -> None:
    """torch's SGD: Nesterov momentum needs a momentum and no dampening."""
    if values.get("nesterov") and (values.get("momentum", 0) <= 0 or values.get("dampening", 0) != 0):
        raise ArgumentError.of(
            "nesterov", values["nesterov"], "false, or true with momentum > 0 and dampening 0"
        )


ADAM = Arguments(OPTIMIZER, betas=betas, eps=checks.number, weight_decay=checks.number)
SGD = Arguments(
    OPTIMIZER,
    momentum=checks.number,
    dampening=checks.number,
    weight_decay=checks.number,
    nesterov=checks.flag,
    together=nesterov_needs_momentum,
)
OPTIMIZERS = {"torch.optim.Adam": ADAM, "torch.optim.AdamW": ADAM, "torch.optim.SGD": SGD}


def optimizer(name: str, value: Any) -> Any:
    """The rules of the optimizer's class when it is one of ``OPTIMIZERS``, else ``OPTIMIZER``'s."""
    target = value.get("_target_") if isinstance(value, Mapping) else None
    return OPTIMIZERS.get(str(target), OPTIMIZER).nested(name, value)


# torch refuses a factor >= 1, another mode or threshold_mode; the others it takes as they come.
PLATEAU = Arguments(
    mode=partial(checks.one_of, allowed=("min", "max")),
    factor=checks.fraction,
    patience=checks.integer,
    threshold=checks.number,
    threshold_mode=partial(checks.one_of, allowed=("rel", "abs")),
    cooldown=checks.integer,
    eps=checks.number,
)


def scheduler(name: str, value: Any) -> Any:
    """``PLATEAU``'s checks for ReduceLROnPlateau; other schedulers are left to torch."""
    if isinstance(value, Mapping) and str(value.get("_target_", "")).endswith(".ReduceLROnPlateau"):
        return PLATEAU.nested(name, value)
    return value


TaskModule = Arguments(
    optimizer=optimizer,
    scheduler=scheduler,
    regularization=WeightPenalty.nested,
    compile=checks.flag,
    channels_last=checks.flag,
)
