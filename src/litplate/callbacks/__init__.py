from litplate.callbacks.ema import EMA
from litplate.callbacks.nonfinite import NonFiniteLossGuard
from litplate.callbacks.preemption import PreemptionCheckpoint
from litplate.callbacks.rng_state import RngStateCheckpoint
from litplate.callbacks.training_plan import TrainingPlanPrinter

__all__ = ["EMA", "NonFiniteLossGuard", "PreemptionCheckpoint", "RngStateCheckpoint", "TrainingPlanPrinter"]
