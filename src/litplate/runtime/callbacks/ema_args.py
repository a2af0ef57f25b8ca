"""EMA's arguments (``callbacks.ema``), checked by EMA itself and, before torch loads, by train.py."""

from functools import partial

from litplate.runtime import checks
from litplate.runtime.arguments import Arguments

EMA = Arguments(
    decay=checks.open_unit,
    warmup=checks.flag,
    update_every_n_steps=partial(checks.integer, minimum=1),
    start_step=checks.integer,
    buffers=partial(checks.one_of, allowed=("average", "copy")),
    validate_ema=checks.flag,
    test_ema=checks.flag,
    sync_buffers=checks.flag,
)
