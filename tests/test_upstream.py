"""The upstream bugs that src/litplate/runtime/upstream/ works around are still there.

Each test shows the bug in the upstream code itself, without the workaround. When one fails,
upstream has fixed it: delete the workaround module (its docstring says what to change).
"""

import os
import signal
import sys
import time

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.strategies.launchers import subprocess_script
from lightning.pytorch.trainer.connectors.logger_connector.result import _ResultCollection
from omegaconf import open_dict
from torch.utils.data import DataLoader, DistributedSampler, IterableDataset
from torchdata.stateful_dataloader import StatefulDataLoader

from litplate.runtime.app import CONFIG_DIR
from litplate.runtime.callbacks import PreemptionCheckpoint
from litplate.runtime.upstream.lightning_20388_log_moves_its_result import ResultStaysOnItsDevice
from litplate.runtime.upstream.lightning_21406_requeue_in_signal_handler import without_lightning_requeue
from litplate.runtime.upstream.lightning_21938_resume_order import DeferredDataLoader
from litplate.runtime.upstream.lightning_ddp_multirun import children_run_this_job_only, job_command
from litplate.runtime.upstream.lightning_unsized_prefetch_resume import TrainedPositionDataLoader


def _multirun_job(tmp_path, monkeypatch) -> None:
    """Hydra's state inside job 0 of ``python train.py -m seed=1,2``."""
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "train.py"), "-m", "seed=1,2"])
    monkeypatch.setattr(sys.modules["__main__"], "__spec__", None)  # run as a script, not python -m
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR):
        cfg = compose("train", overrides=["seed=1"], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.runtime.output_dir = str(tmp_path / "multirun" / "0")
        cfg.hydra.runtime.cwd = str(tmp_path)
        cfg.hydra.job.name = "train"
        cfg.hydra.job.config_name = "train"
    HydraConfig.instance().set_config(cfg)


def test_lightning_16694_ddp_children_rerun_the_whole_sweep(tmp_path, monkeypatch):
    _multirun_job(tmp_path, monkeypatch)
    upstream, _ = subprocess_script._hydra_subprocess_cmd(local_rank=1)
    assert "-m" in upstream and "seed=1,2" in upstream  # the bug: the child starts the sweep again
    ours, cwd = job_command(local_rank=1)
    assert "seed=1" in ours and "seed=1,2" not in ours and "-m" not in ours
    assert f"hydra.run.dir='{tmp_path / 'multirun' / '0'}'" in ours
    assert cwd == str(tmp_path)
    with children_run_this_job_only():  # swapped in for the fit only, then put back
        assert subprocess_script._hydra_subprocess_cmd is job_command
    assert subprocess_script._hydra_subprocess_cmd is not job_command
    GlobalHydra.instance().clear()


class _Indices(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 16

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.tensor([float(index)])


class _RecordsOrder(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.seen: dict[int, list[int]] = {}

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        self.seen.setdefault(self.current_epoch, []).extend(int(i) for i in batch.flatten())
        return self.layer(batch).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def _first_resumed_epoch(loader_class: type, tmp_path) -> tuple[list[int], list[int], list[int]]:
    """Epoch 1's order straight and resumed from the end of epoch 0, and epoch 0's order."""

    def loader() -> DataLoader:
        dataset = _Indices()
        sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=0)
        return loader_class(dataset, batch_size=4, sampler=sampler, num_workers=1, persistent_workers=True)

    def trainer(epochs: int) -> L.Trainer:
        return L.Trainer(
            max_epochs=epochs, accelerator="cpu", logger=False, enable_progress_bar=False,
            enable_model_summary=False, default_root_dir=tmp_path, enable_checkpointing=False,
        )  # fmt: skip

    straight = _RecordsOrder()
    trainer(2).fit(straight, train_dataloaders=loader())
    first = trainer(1)
    first.fit(_RecordsOrder(), train_dataloaders=loader())
    first.save_checkpoint(tmp_path / "epoch0.ckpt")
    resumed = _RecordsOrder()
    trainer(2).fit(resumed, train_dataloaders=loader(), ckpt_path=tmp_path / "epoch0.ckpt", weights_only=True)
    return straight.seen[1], resumed.seen[1], straight.seen[0]


def test_lightning_21938_first_resumed_epoch_replays_epoch_zero_with_workers(tmp_path):
    straight, resumed, epoch0 = _first_resumed_epoch(DataLoader, tmp_path / "plain")
    assert resumed != straight and resumed == epoch0  # the bug, with a plain DataLoader
    straight, resumed, _ = _first_resumed_epoch(DeferredDataLoader, tmp_path / "deferred")
    assert resumed == straight  # the workaround


class _Stream(IterableDataset):
    """0..15 in order, without ``__len__`` (each loader worker yields all of it)."""

    def __iter__(self):
        return (torch.tensor([float(i)]) for i in range(16))


class _SavesAtStep(L.Callback):
    def __init__(self, step: int, path) -> None:
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            trainer.save_checkpoint(self.path)


def _resumed_after_step_3(loader_class: type, workers: int, tmp_path) -> tuple[list[int], list[int]]:
    """The training batches of one epoch straight, and of its rest resumed from a step-3 checkpoint."""

    def fit(module: L.LightningModule, *callbacks: L.Callback, ckpt_path=None) -> list[int]:
        L.Trainer(
            max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False,
            enable_model_summary=False, default_root_dir=tmp_path, enable_checkpointing=False,
            callbacks=list(callbacks),
        ).fit(module, train_dataloaders=loader_class(_Stream(), batch_size=2, num_workers=workers),
              ckpt_path=ckpt_path, weights_only=True)  # fmt: skip
        return module.seen[0]

    straight = fit(_RecordsOrder(), _SavesAtStep(3, tmp_path / "step3.ckpt"))
    return straight, fit(_RecordsOrder(), ckpt_path=tmp_path / "step3.ckpt")


def test_lightning_fetches_ahead_of_a_loader_without_length_and_its_checkpoint_skips_a_batch(tmp_path):
    straight, resumed = _resumed_after_step_3(StatefulDataLoader, 0, tmp_path / "plain")
    assert resumed == straight[8:]  # the bug: batch 4 (samples 6, 7) fetched ahead, never trained
    for workers in (0, 2):
        straight, resumed = _resumed_after_step_3(
            TrainedPositionDataLoader, workers, tmp_path / f"w{workers}"
        )
        assert resumed == straight[6:]  # the workaround: on from the 4th batch, with or without workers


def test_hydra_multirun_turns_a_deletion_into_a_delete_if_null():
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from litplate.runtime.upstream.hydra_multirun_delete import entries_off_as_null

    overrides = OverridesParser.create().parse_overrides(["seed=1,2", "~callbacks.ema"])
    (jobs,) = BasicSweeper.split_arguments(overrides, max_batch_size=None)
    assert jobs[0] == ["seed=1", "~callbacks.ema=null"]  # the bug: "delete if null" in every job
    argv = ["-m", "seed=1,2", "~callbacks.ema", "~logger.csv", "~trainer.max_time"]
    assert entries_off_as_null(argv) == [
        "-m",
        "seed=1,2",
        "callbacks.ema=null",
        "logger.csv=null",
        "~trainer.max_time",
    ]
    assert entries_off_as_null(["~callbacks.ema"]) == ["~callbacks.ema"]  # a single run deletes it


class _SignalsItselfMidStep(L.LightningModule):
    """Sends itself SIGUSR1 inside the training step of optimizer step ``at``, before its update."""

    def __init__(self, hpc_checkpoint, at: int) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.hpc_checkpoint, self.at = hpc_checkpoint, at
        self.saved_inside_the_step: bool | None = None

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        if self.global_step == self.at and self.saved_inside_the_step is None:
            os.kill(os.getpid(), signal.SIGUSR1)
            deadline = time.monotonic() + 10
            while not self.hpc_checkpoint.exists() and time.monotonic() < deadline:
                time.sleep(0.01)  # a sleep the signal interrupts: Python runs the handler at once
            self.saved_inside_the_step = self.hpc_checkpoint.exists()
        return self.layer(batch).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _one_slurm_task(tmp_path, monkeypatch) -> None:
    """The environment srun gives the only task of a job; a fake ``scontrol`` that records its arguments."""
    for name, value in {
        "SLURM_JOB_ID": "321", "SLURM_JOB_NAME": "upstream-test", "SLURM_NTASKS": "1",
        "SLURM_NTASKS_PER_NODE": "1", "SLURM_NNODES": "1", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0", "SLURM_NODELIST": "localhost",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    scontrol = tmp_path / "bin" / "scontrol"
    scontrol.parent.mkdir()
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> "{tmp_path / "scontrol.log"}"\n')
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{scontrol.parent}{os.pathsep}{os.environ.get('PATH', '')}")


def test_lightning_21406_slurm_requeue_handler_saves_inside_a_training_step(tmp_path, monkeypatch):
    _one_slurm_task(tmp_path, monkeypatch)
    hpc = tmp_path / "hpc_ckpt_1.ckpt"
    module = _SignalsItselfMidStep(hpc, at=2)
    trainer = L.Trainer(
        max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, default_root_dir=tmp_path,
    )  # fmt: skip
    assert isinstance(trainer._accelerator_connector.cluster_environment, SLURMEnvironment)
    trainer.fit(module, train_dataloaders=DataLoader(_Indices(), batch_size=4))
    # The bug: the checkpoint was written while step 2's training_step ran, before its update ...
    assert module.saved_inside_the_step
    saved = torch.load(hpc, map_location="cpu", weights_only=True)
    progress = saved["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]
    assert saved["global_step"] == 2 and progress["started"] == progress["processed"] + 1 == 3
    # ... then the job was requeued and training went on to the end.
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "321"]
    assert trainer.global_step == 4

    # The workaround: with a callback that handles the signal, Lightning's handler is off.
    (environment,) = without_lightning_requeue(None, [PreemptionCheckpoint(dirpath=str(tmp_path))])
    assert isinstance(environment, SLURMEnvironment) and not environment.auto_requeue
    assert environment.requeue_signal == signal.SIGUSR1
    assert without_lightning_requeue(None, [PreemptionCheckpoint(str(tmp_path), requeue_signal=None)]) is None
    monkeypatch.delenv("SLURM_NTASKS")
    assert without_lightning_requeue(None, [PreemptionCheckpoint(dirpath=str(tmp_path))]) is None


def test_lightning_20388_each_log_call_rebuilds_its_result_though_nothing_moves():
    results = _ResultCollection(training=True)
    loss = torch.tensor(0.5)
    results.log("training_step", "train/loss", loss, on_step=True, on_epoch=False)
    result = results["training_step.train/loss"]
    meta = result.meta
    results.log("training_step", "train/loss", loss * 2, on_step=True, on_epoch=False)
    assert result.value.device == loss.device and result.value == 1.0
    assert result.meta is not meta  # Lightning's to() rebuilt the result: deep-copied its metadata

    # The workaround's class: a move to where it is leaves it alone; a real move is still Lightning's.
    result.__class__ = ResultStaysOnItsDevice
    meta = result.meta
    results.log("training_step", "train/loss", loss * 3, on_step=True, on_epoch=False)
    assert result.meta is meta and result.value == 1.5
    result.to(torch.device("meta"))
    assert result.value.device.type == "meta" and result.meta is not meta
