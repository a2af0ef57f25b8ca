"""MLP's arguments, checked by MLP itself and, before torch loads, by train.py (``runtime/arguments.py``)."""

from litplate.runtime import checks
from litplate.runtime.arguments import Arguments

# ``model.net.hidden=128`` from the command line is one hidden layer of 128.
MLP = Arguments(hidden=checks.sizes, dropout=checks.fraction)
