from litplate.runtime.callbacks.best_checkpoint import BestCheckpoint
from litplate.runtime.callbacks.best_score import BestScore
from litplate.runtime.callbacks.ema import EMA
from litplate.runtime.callbacks.last_checkpoint import LastCheckpoint
from litplate.runtime.callbacks.lr_monitor import LearningRateMonitor
from litplate.runtime.callbacks.model_checkpoint import ModelCheckpoint
from litplate.runtime.callbacks.nonfinite import NonFiniteLossGuard
from litplate.runtime.callbacks.preemption import PreemptionCheckpoint
from litplate.runtime.callbacks.progress_bar import RichProgressBar, TQDMProgressBar
from litplate.runtime.callbacks.rng_state import RngStateCheckpoint
from litplate.runtime.callbacks.trackers import TrackerRecords
from litplate.runtime.callbacks.training_plan import TrainingPlanPrinter

__all__ = [
    "EMA",
    "BestCheckpoint",
    "BestScore",
    "LastCheckpoint",
    "ModelCheckpoint",
    "LearningRateMonitor",
    "NonFiniteLossGuard",
    "PreemptionCheckpoint",
    "RichProgressBar",
    "TQDMProgressBar",
    "RngStateCheckpoint",
    "TrackerRecords",
    "TrainingPlanPrinter",
]
