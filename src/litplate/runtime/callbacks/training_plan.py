"""Prints the step arithmetic at fit start and checks it against Lightning's own counts."""

import lightning as L
from lightning.pytorch.utilities import rank_zero_only
from rich.console import Console

from litplate.runtime.training_plan import TrainingPlan


class TrainingPlanPrinter(L.Callback):
    """Shows the plan before the first step; raises if Lightning would count differently.

    The plan is kept in ``self.plan`` so tests and user code can compare it with
    ``trainer.global_step`` after fit.
    """

    def __init__(self) -> None:
        self.plan: TrainingPlan | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Not on_fit_start: there ``estimated_stepping_batches`` would set up the train loader before
        # the checkpoint's loader state is restored, and that state would never reach the loader
        # (Lightning issue 20550): a run resumed mid-epoch would start the epoch over.
        estimated = trainer.estimated_stepping_batches
        self.plan = TrainingPlan.from_trainer(trainer)
        if trainer.max_steps < 0 and self.plan.total_steps != estimated:
            raise RuntimeError(
                f"training plan says {self.plan.total_steps} optimizer steps, Lightning estimates {estimated}"
            )
        self._print()

    @rank_zero_only
    def _print(self) -> None:
        Console().print(self.plan.table())
