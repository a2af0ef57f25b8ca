"""The callbacks every run gets; each is imported on first use (``runtime/lazy_exports.py``)."""

from litplate.runtime.lazy_exports import lazy_exports

_HOMES = {
    "EMA": "ema",
    "BestCheckpoint": "best_checkpoint",
    "BestScore": "best_score",
    "LastCheckpoint": "last_checkpoint",
    "ModelCheckpoint": "model_checkpoint",
    "LearningRateMonitor": "lr_monitor",
    "NonFiniteLossGuard": "nonfinite",
    "PreemptionCheckpoint": "preemption",
    "RichProgressBar": "progress_bar",
    "TQDMProgressBar": "progress_bar",
    "RngStateCheckpoint": "rng_state",
    "TrackerRecords": "trackers",
    "TrainingPlanPrinter": "training_plan",
}
__all__ = list(_HOMES)
__getattr__ = lazy_exports(__name__, _HOMES)
