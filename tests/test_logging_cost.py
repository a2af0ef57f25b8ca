"""What ``self.log`` costs a step: Lightning's walk over a logged value's result object runs on the
name's first call only (``runtime/upstream/lightning_20388_log_moves_its_result.py``)."""

import csv
from collections import Counter
from pathlib import Path

from lightning.pytorch.trainer.connectors.logger_connector.result import _ResultMetric

from litplate.runtime.upstream.lightning_20388_log_moves_its_result import ResultStaysOnItsDevice


def test_lightnings_walk_runs_once_per_logged_name(cfg_factory, fit, monkeypatch):
    walks: Counter[str] = Counter()
    lightning_to = _ResultMetric.to

    def counted(self, *args, **kwargs):
        walks[f"{self.meta.fx}.{self.meta.name}"] += 1
        return lightning_to(self, *args, **kwargs)

    monkeypatch.setattr(_ResultMetric, "to", counted)
    # 2 epochs of 20 steps, every step logged: 40 calls of self.log("train/loss") in training_step
    trainer = fit(cfg_factory("trainer.log_every_n_steps=1", "trainer.limit_val_batches=2", "logger=csv"))
    assert walks["training_step.train/loss"] == 1
    assert walks["on_train_epoch_end.train/loss_epoch"] == 1
    assert walks["validation_step.val/acc"] + walks["on_validation_epoch_end.val/acc"] == 1
    assert all(type(r) is ResultStaysOnItsDevice for r in trainer.fit_loop.epoch_loop._results.values())
    with open(Path(trainer.logger.log_dir) / "metrics.csv") as rows:  # each value is still written
        losses = [float(row["train/loss"]) for row in csv.DictReader(rows) if row["train/loss"]]
    assert len(losses) == 40 and len(set(losses)) == 40
