"""The TensorBoard logger does not wait for TensorBoard's writer thread on every logged step.

Lightning calls ``save()`` after each ``log_metrics``; its TensorBoard ``save`` flushes, i.e. waits
until the writer thread has written everything queued. Ours must still write ``hparams.yaml`` as
Lightning's does and get every value to the disk without that wait, and ``finalize`` must leave
everything there.
"""

import time
from pathlib import Path

import pytest
from lightning.pytorch import loggers
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from litplate.runtime.tensorboard_logger import TensorBoardLogger


def on_disk(log_dir: str) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(log_dir, size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.mark.parametrize("cls", [loggers.TensorBoardLogger, TensorBoardLogger])
def test_only_lightnings_logger_waits_for_the_writer_on_logged_steps(tmp_path: Path, cls: type) -> None:
    logger = cls(save_dir=tmp_path, name="tb", version="", default_hp_metric=False)
    flushes = []
    writer = logger.experiment
    flush = writer.flush
    writer.flush = lambda: flushes.append(1) or flush()  # counts the waits on this writer only
    logger.log_hyperparams({"lr": 0.5})
    logger.save()  # what Lightning does at fit start ...
    assert (Path(logger.log_dir) / "hparams.yaml").read_text() == "lr: 0.5\n"
    for step in range(9, 40, 10):  # ... and on each logged step
        logger.log_metrics({"train/loss": step + 0.5}, step=step)
        logger.save()
    assert len(flushes) == (5 if cls is loggers.TensorBoardLogger else 1)
    expected = {"train/loss": [(step, step + 0.5) for step in range(9, 40, 10)]}
    deadline = time.monotonic() + 30  # the writer thread appends each record as it takes it
    while (found := on_disk(logger.log_dir)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert found == expected
    logger.finalize("success")
    assert on_disk(logger.log_dir) == expected
