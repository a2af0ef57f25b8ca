"""WeightPenalty's arguments (``model.regularization``), checked without importing torch."""

from litplate.runtime import checks
from litplate.runtime.arguments import Arguments

WeightPenalty = Arguments(l1=checks.number, l2=checks.number)
