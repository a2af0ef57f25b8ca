"""Launch paths where more than one process runs Hydra: multirun + DDP, and torchrun.

Each training process writes one probe file per rank (tests/rank_probe.py), so the tests count
trainings and see which directory every rank used.
"""

import os
import socket
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import ROOT, run_script
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from test_ddp import COMMON, TESTS, probes

from litplate.runtime.app import CONFIG_DIR

pytestmark = pytest.mark.slow


def test_multirun_with_ddp_runs_each_job_once_per_rank(tmp_path):
    result = run_script(
        "train.py",
        "-m",
        "model.optimizer.lr=0.01,0.02",
        *COMMON,
        "trainer.max_epochs=1",
        f"paths.log_dir={tmp_path / 'logs'}",
        f"+callbacks.probe.out={tmp_path / 'probes'}",
        env={"PYTHONPATH": TESTS},
    )
    assert result.returncode == 0, result.stderr[-3000:]

    records = probes(tmp_path / "probes")
    assert len(records) == 4  # 2 jobs x 2 ranks: no child re-ran the sweep
    sweeps = list((tmp_path / "logs" / "train" / "multiruns").iterdir())
    assert len(sweeps) == 1 and not (tmp_path / "logs" / "train" / "runs").exists()
    by_dir = defaultdict(list)
    for r in records:
        by_dir[r["output_dir"]].append(r)
    assert sorted(by_dir) == [str(sweeps[0] / "0"), str(sweeps[0] / "1")]
    for job_dir, ranks in by_dir.items():
        assert sorted(r["rank"] for r in ranks) == [0, 1]
        assert ranks[0]["config"] == ranks[1]["config"]
        lr = {"0": 0.01, "1": 0.02}[Path(job_dir).name]
        assert all(r["lrs"][0] == [lr] for r in ranks)
        assert not list(Path(job_dir).glob("*rank*.log"))  # children log to stdout only


def test_children_command_is_swapped_only_while_the_context_is_open(monkeypatch):
    """The workaround is scoped (a context manager around fit/test), not an import-time patch:
    Lightning's own command is back afterwards, and outside a Hydra run it is never replaced."""
    from hydra.core.hydra_config import HydraConfig
    from lightning.pytorch.strategies.launchers import subprocess_script

    from litplate.runtime.upstream import lightning_ddp_multirun as workaround

    original = subprocess_script._hydra_subprocess_cmd
    assert original is not workaround.job_command  # importing the workaround patched nothing
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)  # train(cfg) from Python: no Hydra run
    with workaround.children_run_this_job_only():
        assert subprocess_script._hydra_subprocess_cmd is original
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR):
        HydraConfig.instance().set_config(compose("train", return_hydra_config=True))
    GlobalHydra.instance().clear()
    with workaround.children_run_this_job_only():
        assert subprocess_script._hydra_subprocess_cmd is workaround.job_command
    assert subprocess_script._hydra_subprocess_cmd is original


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("flags", "stamp"),
    [([], "torchrun-"), (["--master-port=FREE"], "_torchrun")],
    ids=["rendezvous-id", "static-no-id"],
)
def test_torchrun_ranks_share_one_run_directory(tmp_path, flags, stamp):
    """torchrun starts both ranks itself and each composes its own config: the run directory
    name must come out the same without any rank telling the other."""
    flags = [f.replace("FREE", str(free_port())) for f in flags]
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", *flags,
        str(ROOT / "train.py"), *COMMON, "trainer.max_epochs=1",
        f"paths.log_dir={tmp_path / 'logs'}", f"+callbacks.probe.out={tmp_path / 'probes'}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": TESTS}
    env.pop("HYDRA_FULL_ERROR", None)
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]

    records = probes(tmp_path / "probes")
    assert [r["rank"] for r in records] == [0, 1]
    runs = list((tmp_path / "logs" / "train" / "runs").iterdir())
    assert len(runs) == 1 and stamp in runs[0].name
    assert {r["output_dir"] for r in records} == {str(runs[0])}
    assert records[0]["config"] == records[1]["config"]
    assert records[0]["global_step"] == records[0]["plan_total_steps"] == records[1]["global_step"]


def test_slurm_launcher_takes_its_job_shape_from_the_trainer():
    pytest.importorskip(
        "hydra_plugins.hydra_submitit_launcher", reason="optional extra: pip install -e .[slurm]"
    )
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR):
        overrides = ["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=8", "trainer.num_nodes=2"]
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    GlobalHydra.instance().clear()
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 8, 8)
