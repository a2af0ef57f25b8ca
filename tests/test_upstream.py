"""The upstream bugs that src/litplate/runtime/upstream/ works around are still there.

Each test shows the bug in the upstream code itself, without the workaround. When one fails,
upstream has fixed it: delete the workaround module (its docstring says what to change).
"""

import sys

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.strategies.launchers import subprocess_script
from omegaconf import open_dict
from torch.utils.data import DataLoader, DistributedSampler

from litplate.runtime.app import CONFIG_DIR
from litplate.runtime.upstream.lightning_21938_resume_order import DeferredDataLoader
from litplate.runtime.upstream.lightning_ddp_multirun import children_run_this_job_only, job_command


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
