"""Test-only callback that each training process runs: it writes what its rank saw to a JSON file.

Added to a real run with ``+callbacks.probe._target_=rank_probe.RankProbe +callbacks.probe.out=DIR``
(tests put this folder on PYTHONPATH, so DDP children and torchrun workers import it too). One file
per training and rank lets tests count trainings and compare ranks.
"""

import json
import os
from pathlib import Path

import lightning as L
from torch.optim.lr_scheduler import ReduceLROnPlateau

from litplate.runtime.callbacks import TrainingPlanPrinter
from litplate.runtime.checkpointing import RunConfigInCheckpoint


class RankProbe(L.Callback):
    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.record: dict = {"plateau_received": [], "local_means": [], "lrs": []}

    def _record_next_plateau_step(self, pl_module: L.LightningModule) -> None:
        """Wrap ``scheduler.step`` for one call; the wrapper removes itself before the checkpoint
        pickles the scheduler's ``__dict__``."""
        scheduler = pl_module.lr_schedulers()
        if not isinstance(scheduler, ReduceLROnPlateau):
            return

        def recording_step(metrics, *args, **kwargs):
            del scheduler.step
            self.record["plateau_received"].append(float(metrics))
            return scheduler.step(metrics, *args, **kwargs)

        scheduler.step = recording_step

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Callbacks run before the module's hook: these are this rank's own, not yet reduced, totals.
        means = pl_module.train_means
        self.record["local_means"].append((means.totals / means.weight).tolist())
        self.record["local_weight"] = float(means.weight)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.record["lrs"].append([g["lr"] for g in trainer.optimizers[0].param_groups])
        self._record_next_plateau_step(pl_module)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.record["lrs"].append([g["lr"] for g in trainer.optimizers[0].param_groups])
        config = next(c.config for c in trainer.callbacks if isinstance(c, RunConfigInCheckpoint))
        plans = [c.plan for c in trainer.callbacks if isinstance(c, TrainingPlanPrinter)]
        environment = getattr(trainer.strategy, "cluster_environment", None)
        self.record |= {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "local_rank": trainer.local_rank,
            "node_rank": trainer.node_rank,
            "cluster_environment": type(environment).__name__,
            "auto_requeue": getattr(environment, "auto_requeue", None),  # SLURMEnvironment's own handler
            "pid": os.getpid(),
            "config": config,
            "output_dir": config["paths"]["output_dir"],
            "global_step": trainer.global_step,
            "plan_total_steps": plans[0].total_steps if plans else None,
        }
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / f"rank{trainer.global_rank}-pid{os.getpid()}-{id(self)}.json"
        path.write_text(json.dumps(self.record))
