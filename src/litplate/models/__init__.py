"""The task modules; each is imported on first use (``runtime/lazy_exports.py``)."""

from litplate.runtime.lazy_exports import lazy_exports

_HOMES = {"Classifier": "classifier", "Regressor": "regressor"}
__all__ = list(_HOMES)
__getattr__ = lazy_exports(__name__, _HOMES)
