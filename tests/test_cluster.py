"""A cluster on one machine: two SLURM tasks and two torchrun "nodes", started by the test itself.

SLURM: each task is ``python train.py`` with the environment ``srun`` gives a task of a 1-node,
2-task job (no srun here). torchrun: two launchers, ``--nnodes=2 --nproc-per-node=1``, one per
"node". Each is compared bit for bit with the same config launched by Lightning from one
``python train.py trainer.devices=2 trainer.strategy=ddp``. The requeue test sends the real
SIGUSR1 to both tasks mid-epoch, with a fake ``scontrol`` first on PATH (the real-command
boundary: it records its arguments), then starts both tasks again as SLURM would after
``scontrol requeue``: same job id, ``SLURM_RESTART_COUNT=1``, same command line.

Runs are shared by the checks (module-scoped fixtures): five launches of two processes each.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import ROOT, assert_same_run
from test_launchers import free_port
from test_resume import RUN

from litplate.runtime import slurm
from litplate.runtime.callbacks import PreemptionCheckpoint
from litplate.runtime.errors import ArgumentError

pytestmark = pytest.mark.slow

TESTS = str(Path(__file__).parent)
QUIET = [*RUN, "trainer.max_epochs=3", "~callbacks.progress_bar"]  # 5 batches a rank an epoch, 15 steps
PAUSE_STEP = 7  # the requeue run is held after step 7 (epoch 1, batch 2 of 5) and signalled there
# Launch variables a test process may have inherited (from a real SLURM job or torchrun): none may leak.
LAUNCH_VARIABLES = ("SLURM_", "TORCHELASTIC_", "MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK",
                    "LOCAL_WORLD_SIZE", "WORLD_SIZE", "GROUP_RANK", "NODE_RANK")  # fmt: skip


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(LAUNCH_VARIABLES) and k != "HYDRA_FULL_ERROR"
    }
    return env | {"PYTHONPATH": TESTS, "PYTHONUNBUFFERED": "1"} | extra


def slurm_task_env(rank: int, job_id: str, port: int, **extra: str) -> dict[str, str]:
    """What srun sets for task ``rank`` of ``sbatch --nodes=1 --ntasks-per-node=2`` (and what Lightning
    reads), plus the rendezvous address: Lightning would otherwise derive the port from the job id."""
    return clean_env(
        SLURM_JOB_ID=job_id,
        SLURM_JOB_NAME="litplate-test",  # "bash" or "interactive" would make Lightning ignore SLURM
        SLURM_NTASKS="2",
        SLURM_NTASKS_PER_NODE="2",
        SLURM_NNODES="1",
        SLURM_NODEID="0",
        SLURM_PROCID=str(rank),
        SLURM_LOCALID=str(rank),
        SLURM_NODELIST="localhost",
        SLURM_JOB_NODELIST="localhost",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        **extra,
    )


class Processes:
    """Real processes in their own sessions, output to files; whatever is left is killed at the end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[subprocess.Popen] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        self.directory.mkdir(parents=True, exist_ok=True)
        with (
            open(self.directory / f"{name}.out", "w") as out,
            open(self.directory / f"{name}.err", "w") as err,
        ):
            process = subprocess.Popen(
                argv, cwd=self.directory, env=env, stdout=out, stderr=err, start_new_session=True
            )
        self.started.append(process)
        return process

    def wait(self, processes: list[subprocess.Popen], timeout: float = 400) -> list[int]:
        deadline = time.monotonic() + timeout
        for process in processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        return [p.returncode for p in processes]

    def output(self, name: str) -> tuple[str, str]:
        return (self.directory / f"{name}.out").read_text(), (self.directory / f"{name}.err").read_text()

    def kill_stragglers(self) -> None:
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)  # its session: a torchrun agent and its worker
                process.wait()


@pytest.fixture(scope="module")
def processes(tmp_path_factory) -> Iterator[Processes]:
    running = Processes(tmp_path_factory.mktemp("cluster"))
    try:
        yield running
    finally:
        running.kill_stragglers()


def train_argv(*overrides: str) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), *QUIET, *overrides]


def probe(out: Path) -> list[str]:
    return ["+callbacks.probe._target_=rank_probe.RankProbe", f"+callbacks.probe.out={out}"]


def probes(directory: Path) -> list[dict[str, Any]]:
    return sorted((json.loads(p.read_text()) for p in directory.glob("*.json")), key=lambda r: r["rank"])


def load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def run_dirs(logs: Path) -> list[Path]:
    return sorted(p for p in logs.glob("*/*/*") if p.is_dir())


def start_slurm_tasks(
    processes: Processes, name: str, job_id: str, overrides: list[str], **extra: str
) -> list[subprocess.Popen]:
    port = free_port()
    argv = train_argv("trainer=ddp", "trainer.accelerator=cpu", *overrides)
    return [
        processes.start(f"{name}-task{rank}", argv, slurm_task_env(rank, job_id, port, **extra))
        for rank in (0, 1)
    ]


# ---- the runs ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lightning_ddp(processes) -> dict[str, Any]:
    """The reference: Lightning starts the second process itself."""
    out = processes.directory / "lightning_ddp"
    argv = train_argv(
        "trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp", f"hydra.run.dir={out / 'run'}"
    )
    (code,) = processes.wait([processes.start("lightning_ddp", [*argv, *probe(out / "probes")], clean_env())])
    assert code == 0, processes.output("lightning_ddp")[1][-3000:]
    return {"last": load(out / "run" / "checkpoints" / "last.ckpt"), "probes": probes(out / "probes")}


@pytest.fixture(scope="module")
def slurm_job(processes) -> dict[str, Any]:
    out = processes.directory / "slurm_job"
    tasks = start_slurm_tasks(
        processes, "slurm", "4242", [f"paths.log_dir={out / 'logs'}", *probe(out / "probes")]
    )
    codes = processes.wait(tasks)
    assert codes == [0, 0], [processes.output(f"slurm-task{r}")[1][-3000:] for r in (0, 1)]
    runs = run_dirs(out / "logs")
    return {
        "runs": runs,
        "last": load(runs[0] / "checkpoints" / "last.ckpt"),
        "probes": probes(out / "probes"),
    }


@pytest.fixture(scope="module")
def requeued_job(processes) -> dict[str, Any]:
    """Job 4243: SIGUSR1 to both tasks after step 7, then the requeued start of the same job."""
    out = processes.directory / "requeued_job"
    fake_bin, gate = out / "bin", out / "gate"
    fake_bin.mkdir(parents=True)
    scontrol = fake_bin / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> "{out / "scontrol.log"}"\n')
    scontrol.chmod(0o755)
    path = f"{fake_bin}{os.pathsep}{os.environ.get('PATH', '')}"
    pause = [
        "+callbacks.pause._target_=pause_at_step.PauseAtStep",
        f"+callbacks.pause.step={PAUSE_STEP}",
        f"+callbacks.pause.out={gate}",
    ]
    overrides = [f"paths.log_dir={out / 'logs'}", *pause]

    first = start_slurm_tasks(processes, "first", "4243", overrides, PATH=path)
    deadline = time.monotonic() + 300
    while not all((gate / f"paused-rank{rank}").exists() for rank in (0, 1)):
        if any(task.poll() is not None for task in first) or time.monotonic() > deadline:
            pytest.fail(
                f"the tasks did not reach step {PAUSE_STEP}: {processes.output('first-task0')[1][-3000:]}"
            )
        time.sleep(0.01)
    for task in first:  # as SLURM's --signal=USR1@SECONDS does: every task
        task.send_signal(signal.SIGUSR1)
    (gate / "go").touch()
    first_codes = processes.wait(first)
    interrupted = run_dirs(out / "logs")[0] / "checkpoints" / "interrupted.ckpt"
    record = {
        "first_codes": first_codes,
        "first_stderr": [processes.output(f"first-task{r}")[1] for r in (0, 1)],
        "requeue_calls": (out / "scontrol.log").read_text().splitlines()
        if (out / "scontrol.log").exists()
        else [],
        "interrupted_path": interrupted,
        "interrupted": load(interrupted) if interrupted.exists() else None,
    }
    again = start_slurm_tasks(processes, "again", "4243", overrides, PATH=path, SLURM_RESTART_COUNT="1")
    record["again_codes"] = processes.wait(again)
    record["again_output"] = [processes.output(f"again-task{r}") for r in (0, 1)]
    record["runs"] = run_dirs(out / "logs")
    record["files"] = sorted(p.relative_to(out / "logs").as_posix() for p in (out / "logs").rglob("*.ckpt"))
    last = record["runs"][0] / "checkpoints" / "last.ckpt"
    record["last"] = load(last) if last.exists() else None
    return record


@pytest.fixture(scope="module")
def torchrun_nodes(processes) -> dict[str, Any]:
    """Two torchrun launchers, one process each, as on two nodes (static rendezvous at node 0)."""
    out = processes.directory / "torchrun"
    port = free_port()
    launchers = [
        processes.start(
            f"torchrun-node{node}",
            [
                sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
                f"--node-rank={node}", "--master-addr=127.0.0.1", f"--master-port={port}",
                "--rdzv-id=cluster-test",
                *train_argv(
                    "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=1", "trainer.num_nodes=2",
                    f"paths.log_dir={out / 'logs'}", *probe(out / "probes"),
                )[1:],
            ],
            clean_env(),
        )
        for node in (0, 1)
    ]  # fmt: skip
    codes = processes.wait(launchers)
    assert codes == [0, 0], [processes.output(f"torchrun-node{n}")[1][-3000:] for n in (0, 1)]
    runs = run_dirs(out / "logs")
    return {
        "runs": runs,
        "last": load(runs[0] / "checkpoints" / "last.ckpt"),
        "probes": probes(out / "probes"),
    }


# ---- SLURM ---------------------------------------------------------------------------------------


def test_slurm_tasks_run_through_lightnings_slurm_environment_into_one_run_directory(slurm_job):
    records = slurm_job["probes"]
    assert [r["cluster_environment"] for r in records] == ["SLURMEnvironment"] * 2
    assert [r["auto_requeue"] for r in records] == [False, False]  # PreemptionCheckpoint handles SIGUSR1
    assert [(r["rank"], r["local_rank"], r["node_rank"], r["world_size"]) for r in records] == [
        (0, 0, 0, 2),
        (1, 1, 0, 2),
    ]
    assert [r.name for r in slurm_job["runs"]] == ["slurm-4242"]  # run_stamp: the job id
    assert {r["output_dir"] for r in records} == {str(slurm_job["runs"][0])}
    assert records[0]["config"] == records[1]["config"]
    assert records[0]["global_step"] == records[0]["plan_total_steps"] == 15


def test_slurm_tasks_train_bitwise_like_lightning_launched_ddp(slurm_job, lightning_ddp):
    assert [r["cluster_environment"] for r in lightning_ddp["probes"]] == ["LightningEnvironment"] * 2
    assert_same_run(lightning_ddp["last"], slurm_job["last"])


def test_sigusr1_stops_every_task_after_the_same_step_saves_requeues_and_exits(requeued_job):
    record = requeued_job
    assert record["first_codes"] == [138, 138], record["first_stderr"][0][-3000:]
    assert record["requeue_calls"] == ["requeue 4243"]  # once, by rank 0, after the save
    interrupted = record["interrupted_path"]
    assert not any("Traceback" in err for err in record["first_stderr"]), record["first_stderr"][0][-3000:]
    assert record["first_stderr"][0].strip().splitlines()[-1] == (
        f"SIGUSR1 at epoch 1, step {PAUSE_STEP + 1}: saved {interrupted}; requeued SLURM job 4243, "
        "which resumes from it"
    )
    state = record["interrupted"]
    assert state["global_step"] == PAUSE_STEP + 1  # the step in flight when the signal came finished
    progress = state["loops"]["fit_loop"]["epoch_loop.batch_progress"]
    assert progress["current"]["completed"] == 3 and not progress["is_last_batch"]  # mid-epoch: 3 of 5
    assert state["epoch_means"]["per_rank"][:, -1].tolist() == [3 * 128, 3 * 128]  # both ranks' partial sums
    assert (
        state["optimizer_states"]
        and "EMA" in state["callbacks"]
        and "RngStateCheckpoint" in state["callbacks"]
    )
    # Lightning's own handler (hpc_ckpt_N.ckpt, written inside the signal handler) did not run.
    assert not [f for f in record["files"] if "hpc_ckpt" in f]


def test_requeued_job_resumes_by_itself_and_ends_bitwise_like_the_uninterrupted_job(
    requeued_job, slurm_job, lightning_ddp
):
    record = requeued_job
    assert record["again_codes"] == [0, 0], record["again_output"][0][1][-3000:]
    (out0, err0), (out1, _) = record["again_output"]
    interrupted = record["interrupted_path"]
    assert f"SLURM job 4243, restart 1: resuming from {interrupted}" in out0  # no ckpt_path given
    assert "resuming" not in out1  # said once, by rank 0
    assert f"Restoring states from the checkpoint path at {interrupted}" in err0
    assert [r.name for r in record["runs"]] == ["slurm-4243"]  # both starts, one run directory
    assert record["requeue_calls"] == ["requeue 4243"]
    assert_same_run(slurm_job["last"], record["last"])
    assert_same_run(lightning_ddp["last"], record["last"])


def test_requeue_failure_is_one_line_naming_the_command(tmp_path, monkeypatch):
    """A job that cannot be requeued (``--no-requeue``): the task still exits, saying so."""
    scontrol = tmp_path / "scontrol"
    scontrol.write_text("#!/bin/sh\necho 'scontrol: error: Requested operation is disabled' >&2\nexit 1\n")
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    refused = "scontrol: error: Requested operation is disabled"
    assert slurm.requeue() == (False, f"could not requeue SLURM job 77 (scontrol requeue 77: {refused})")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "70")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert slurm.job_id() == "70_3"  # an array task is requeued as ARRAYJOB_TASK


def test_requeue_signal_is_a_user_signal_or_null(tmp_path):
    with pytest.raises(
        ArgumentError, match=r"requeue_signal='SIGHUP' is not allowed: use SIGUSR1, SIGUSR2 or null"
    ):
        PreemptionCheckpoint(dirpath=str(tmp_path), requeue_signal="SIGHUP")


def test_only_a_requeued_start_resumes_by_itself(tmp_path, monkeypatch, capsys):
    (tmp_path / "last.ckpt").write_bytes(b"")
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    assert slurm.checkpoint_after_requeue(tmp_path) is None  # a first start is a new run
    monkeypatch.setenv("SLURM_RESTART_COUNT", "2")
    assert slurm.checkpoint_after_requeue(tmp_path) == str(tmp_path / "last.ckpt")
    assert slurm.checkpoint_after_requeue(tmp_path / "none_yet") is None  # requeued before any checkpoint
    assert "SLURM job 77, restart 2: no checkpoint in" in capsys.readouterr().out


# ---- torchrun ------------------------------------------------------------------------------------


def test_torchrun_nodes_run_through_torchelastic_into_one_run_directory(torchrun_nodes):
    records = torchrun_nodes["probes"]
    assert [r["cluster_environment"] for r in records] == ["TorchElasticEnvironment"] * 2
    assert [(r["rank"], r["local_rank"], r["node_rank"], r["world_size"]) for r in records] == [
        (0, 0, 0, 2),
        (1, 0, 1, 2),
    ]
    assert [r.name for r in torchrun_nodes["runs"]] == ["torchrun-cluster-test"]  # run_stamp: --rdzv-id
    assert {r["output_dir"] for r in records} == {str(torchrun_nodes["runs"][0])}


def test_torchrun_nodes_train_bitwise_like_lightning_launched_ddp(torchrun_nodes, lightning_ddp):
    assert_same_run(lightning_ddp["last"], torchrun_nodes["last"])
