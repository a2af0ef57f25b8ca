"""CNN's arguments, checked by CNN itself and, before torch loads, by train.py (``runtime/arguments.py``).

``input_shape`` comes from the data, so CNN checks it when it is built.
"""

from functools import partial

from litplate.runtime import checks
from litplate.runtime.arguments import Arguments

CNN = Arguments(channels=checks.sizes, hidden=partial(checks.integer, minimum=1), dropout=checks.fraction)
