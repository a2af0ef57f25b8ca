"""Real faults on real training processes: SIGKILL, SIGTERM, Ctrl-C, NaN loss, full and read-only disks."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from conftest import ROOT, assert_same_run, run_script

from litplate.runtime.checkpointing import AtomicCheckpointIO
from litplate.runtime.errors import NonFiniteCheckpointError
from litplate.train import train

QUIET = ["~callbacks.progress_bar", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu"]
# Checkpoints of ~18 MB (weights, two Adam moments, EMA): a write lasts long enough to be caught.
BIG = ["model.net.hidden=[1024,1024]", "~logger", "~callbacks.lr_monitor", "test=false"]


def _start(run_dir: Path, *overrides: str) -> subprocess.Popen:
    """``python train.py`` in the background; its output goes to files (a full pipe would block it)."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"} | {"PYTHONUNBUFFERED": "1"}
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{run_dir}.out", "w") as out, open(f"{run_dir}.err", "w") as err:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={run_dir}", *QUIET, *overrides],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
        )


def _stderr(run_dir: Path) -> str:
    return Path(f"{run_dir}.err").read_text()


def _wait_for(condition: Callable[[], bool], process: subprocess.Popen, poll: float = 0.001) -> None:
    """Poll until ``condition()``; fail (with the run's output) if the process ends or 5 min pass."""
    deadline = time.monotonic() + 300
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"training ended (rc {process.returncode}) before the moment to signal it")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("timed out waiting for the training process")
        time.sleep(poll)


def _tmp_files(directory: Path) -> list[str]:
    with contextlib.suppress(FileNotFoundError):
        return [e.name for e in os.scandir(directory) if e.name.endswith(".tmp")]
    return []


def _assert_all_checkpoints_load(directory: Path) -> list[Path]:
    files = sorted(directory.glob("*.ckpt"))
    for path in files:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        assert all(t.isfinite().all() for t in checkpoint["state_dict"].values()), path
    return files


def _error_line(stderr: str) -> str:
    """The run's last stderr line, which must be its one-line error, with no traceback anywhere."""
    assert "Traceback" not in stderr, stderr[-3000:]
    return stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_sigkill_while_a_checkpoint_is_written_leaves_loadable_files_and_resume_completes(tmp_path):
    run_dir, ckpts = tmp_path / "run", tmp_path / "run" / "checkpoints"
    process = _start(run_dir, *BIG, "trainer.max_epochs=50")
    _wait_for(lambda: (ckpts / "last.ckpt").exists(), process)
    _wait_for(lambda: bool(_tmp_files(ckpts)), process)  # the next epoch's write has begun
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL

    files = _assert_all_checkpoints_load(ckpts)
    assert ckpts / "last.ckpt" in files
    epochs = {str(f): torch.load(f, weights_only=True)["epoch"] for f in files}
    newest = max(epochs.values())

    resume = [f"hydra.run.dir={run_dir}", *QUIET, *BIG, f"trainer.max_epochs={newest + 2}", "ckpt_path=last"]
    resumed = run_script("train.py", *resume)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    restored = re.search(r"Restoring states from the checkpoint path at (\S+)", resumed.stderr).group(1)
    assert epochs[restored] == newest  # ckpt_path=last took the most advanced state on disk
    assert torch.load(ckpts / "last.ckpt", weights_only=True)["epoch"] == newest + 1
    _assert_all_checkpoints_load(ckpts)


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_save_the_current_state_and_exit_with_its_path(tmp_path, sig, code):
    run_dir, ckpts = tmp_path / "run", tmp_path / "run" / "checkpoints"
    # 79 batches an epoch; step.ckpt at step 100 is 21 batches into epoch 1: signalled then, the
    # run stops in the middle of that epoch.
    mid_epoch = ["data.batch_size=16", "callbacks.step_checkpoint.every_n_train_steps=100"]
    process = _start(run_dir, "trainer.max_epochs=1000", "~logger", "~callbacks.lr_monitor", *mid_epoch)
    _wait_for(lambda: (ckpts / "step.ckpt").exists(), process)
    process.send_signal(sig)
    process.wait(timeout=120)
    stderr = _stderr(run_dir)

    assert process.returncode == code, stderr[-3000:]
    interrupted = ckpts / "interrupted.ckpt"
    line = _error_line(stderr)
    assert line.startswith(f"{sig.name} at epoch ") and f"saved {interrupted}" in line, line
    state = torch.load(interrupted, map_location="cpu", weights_only=True)
    last = torch.load(ckpts / "last.ckpt", map_location="cpu", weights_only=True)
    assert f"step {state['global_step']}:" in line
    assert state["global_step"] >= last["global_step"] > 0  # the current state, not the epoch's start
    assert state["optimizer_states"] and "EMA" in state["callbacks"]
    _assert_all_checkpoints_load(ckpts)

    if sig == signal.SIGTERM:  # resumed, the run ends as the uninterrupted one, bit for bit
        progress = state["loops"]["fit_loop"]["epoch_loop.batch_progress"]
        assert progress["current"]["completed"] > 0 and not progress["is_last_batch"]  # mid-epoch
        epochs = [f"trainer.max_epochs={state['epoch'] + 1}", "test=false", "~logger", *mid_epoch]
        epochs.append("~callbacks.lr_monitor")
        resumed = run_script(
            "train.py", f"hydra.run.dir={tmp_path / 'resumed'}", *QUIET, *epochs, f"ckpt_path={interrupted}"
        )
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        straight = run_script("train.py", f"hydra.run.dir={tmp_path / 'straight'}", *QUIET, *epochs)
        assert straight.returncode == 0, straight.stderr[-3000:]
        assert_same_run(
            torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=True),
            torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True),
        )


@pytest.mark.slow
def test_non_finite_loss_stops_at_once_naming_epoch_step_and_terms(tmp_path):
    # l2 * sum(w**2) overflows float32: the objective is inf at the first step. Checked every step.
    every_step = "callbacks.nonfinite_guard.check_every_n_steps=1"
    result = run_script(
        "train.py", f"hydra.run.dir={tmp_path}", *QUIET, "model.regularization.l2=1e37", every_step
    )
    assert result.returncode == 1
    line = _error_line(result.stderr)
    assert line.startswith("error: non-finite loss at epoch 0, step 0 (batch 0): loss=inf"), line
    assert "data_loss=" in line and "l1=0" in line and "l2=inf" in line
    assert not list((tmp_path / "checkpoints").glob("*.ckpt"))


def test_non_finite_loss_is_found_on_the_next_checked_step_without_a_read_per_step(cfg_factory, capsys):
    # The default checks on logged steps (every 10th): the window is named, and no checkpoint is written.
    cfg = cfg_factory("model.regularization.l2=1e37", "trainer.max_epochs=1")
    with pytest.raises(SystemExit) as exited:
        train(cfg)
    assert exited.value.code == 1
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("error: non-finite loss at epoch 0, steps 0-9 (batch 9): loss=inf"), message
    assert "the guard checks every 10 steps" in message and "check_every_n_steps=1" in message
    assert not list((Path(cfg.paths.output_dir) / "checkpoints").glob("*.ckpt"))


def test_checkpoint_writer_refuses_non_finite_weights_and_keeps_the_old_file(tmp_path):
    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "epoch": 0}, path)
    before = path.read_bytes()
    with pytest.raises(NonFiniteCheckpointError, match=r"weight 'w' is NaN or inf"):
        io.save_checkpoint({"state_dict": {"w": torch.tensor([1.0, float("nan"), 1.0])}, "epoch": 1}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["last.ckpt"]
    assert torch.equal(io.load_checkpoint(path, weights_only=True)["state_dict"]["w"], torch.ones(3))


@contextlib.contextmanager
def _tmpfs(directory: Path, options: str) -> Iterator[None]:
    """A small tmpfs at ``directory`` (root only; skips the test where mounting is not permitted)."""
    directory.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here to simulate the disk ({mounted.stderr.decode().strip()})")
    try:
        yield
    finally:
        subprocess.run(["umount", str(directory)], check=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tmpfs mounts are Linux-only")
def test_full_disk_is_one_line_and_leaves_no_partial_checkpoint(tmp_path):
    disk = tmp_path / "disk"
    with _tmpfs(disk, "size=512k"):  # room for the run's logs, not for a 1.4 MB checkpoint
        result = run_script("train.py", f"hydra.run.dir={disk / 'run'}", *QUIET, "trainer.max_epochs=1")
        assert result.returncode == 1
        line = _error_line(result.stderr)
        assert line == (
            f"error: cannot write checkpoint {disk / 'run' / 'checkpoints' / 'epoch_000.ckpt'}: "
            "No space left on device"
        )
        assert os.listdir(disk / "run" / "checkpoints") == []  # no partial file, no temporary left


def test_unwritable_log_dir_is_one_line(tmp_path):
    logs = tmp_path / "logs"
    if os.geteuid() == 0:  # root writes through permissions: make the filesystem itself read-only
        context = _tmpfs(logs, "ro,size=64k")
    else:
        logs.mkdir()
        logs.chmod(0o555)
        context = contextlib.nullcontext()
    with context:
        result = run_script("train.py", f"paths.log_dir={logs}", *QUIET)
    assert result.returncode == 2
    line = _error_line(result.stderr)
    assert line.startswith(f"error: cannot write {logs}/"), line
    assert line.endswith(("Read-only file system", "Permission denied")), line
