"""L1 / L2 weight penalties added to the training objective."""

import torch
from torch import Tensor, nn

from litplate.runtime import regularization_args


class WeightPenalty:
    """``l1 * sum|w| + l2 * sum w**2`` over weight tensors: parameters with two or more dimensions.

    Biases and normalization scales/shifts (one-dimensional) are excluded: shrinking them does not
    limit the model's capacity and, for BatchNorm, fights the normalization.

    L2 convention: the penalty is ``l2 * sum w**2`` (no 1/2), so its gradient is ``2 * l2 * w`` and
    the term enters the loss, the logs and the plateau scheduler. With plain SGD this equals
    ``weight_decay = 2 * l2``. It is *not* AdamW's ``weight_decay``: AdamW shrinks weights by
    ``lr * weight_decay * w`` outside the gradient, so the decay is not rescaled by Adam's
    per-parameter step size and never appears in the loss. Use one or the other on purpose.
    """

    @regularization_args.WeightPenalty.check
    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1, self.l2 = l1, l2
        self._zero: Tensor | None = None

    def _zero_like(self, tensor: Tensor) -> Tensor:
        """A zero for a switched-off term, made once per device and dtype instead of every step."""
        zero = self._zero
        if zero is None or zero.device != tensor.device or zero.dtype != tensor.dtype:
            self._zero = zero = tensor.new_zeros(())
        return zero

    @staticmethod
    def weights(module: nn.Module) -> list[Tensor]:
        return [p for p in module.parameters() if p.requires_grad and p.ndim >= 2]

    def __call__(self, weights: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Return ``(l1 term, l2 term)``, each already multiplied by its coefficient."""
        zero = self._zero_like(weights[0] if weights else torch.zeros(()))
        # One fused norm kernel per list instead of one reduction per tensor.
        l1 = self.l1 * torch.stack(torch._foreach_norm(weights, 1)).sum() if self.l1 and weights else zero
        l2 = (
            self.l2 * torch.stack(torch._foreach_norm(weights, 2)).square().sum()
            if self.l2 and weights
            else zero
        )
        return l1, l2
