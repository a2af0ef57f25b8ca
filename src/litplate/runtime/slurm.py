"""SLURM seen from inside one task: is this a SLURM task, which job to requeue, is this a requeued start.

A job requeued with ``scontrol requeue`` starts again with the same ``SLURM_JOB_ID`` (so the same
run directory, ``run_stamp``) and ``SLURM_RESTART_COUNT`` counting its restarts. Its command line is
the one it was submitted with, so it cannot name the checkpoint to resume from: ``train.py`` takes
the run's newest checkpoint itself (``checkpoint_after_requeue``). SLURM's ``--signal=USR1@SECONDS``
warns every task before the time limit; ``PreemptionCheckpoint`` saves at the next step boundary and
calls ``requeue()``.
"""

import os
import subprocess
from pathlib import Path

from lightning.fabric.plugins.environments import SLURMEnvironment

from litplate.runtime.checkpointing import newest_checkpoint


def in_slurm_task() -> bool:
    """A task started by ``srun`` (or with its environment), as Lightning detects it: ``SLURM_NTASKS``
    set and a job name other than ``bash`` / ``interactive`` (an ``salloc`` shell)."""
    return SLURMEnvironment.detect()


def job_id() -> str | None:
    """The id ``scontrol requeue`` takes: ``ARRAYJOB_TASK`` for an array task, else ``SLURM_JOB_ID``."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID")


def restart_count() -> int:
    """How often SLURM has restarted this job (0, or unset, on its first start)."""
    try:
        return int(os.environ.get("SLURM_RESTART_COUNT", "0"))
    except ValueError:
        return 0


def requeue() -> tuple[bool, str]:
    """``scontrol requeue JOB``: whether it worked, and one line saying what happened.

    SLURM then ends this job's tasks and queues the job again; the caller has written its
    checkpoint already. Fails (False) when the job cannot be requeued (``--no-requeue``, or a
    cluster that forbids it), without raising: the checkpoint is still there to resume from by hand.
    """
    job = job_id()
    if not job:
        return False, "not requeued: no SLURM_JOB_ID"
    command = ["scontrol", "requeue", job]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"could not requeue SLURM job {job} ({' '.join(command)}: {error})"
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        reason = said[-1] if said else f"exit status {done.returncode}"
        return False, f"could not requeue SLURM job {job} ({' '.join(command)}: {reason})"
    return True, f"requeued SLURM job {job}"


def checkpoint_after_requeue(checkpoint_dir: Path) -> str | None:
    """On a requeued start of a SLURM job, the newest checkpoint in the run's ``checkpoint_dir``.

    None on a first start, outside SLURM, or when the job was requeued before it wrote any
    checkpoint (it then starts from scratch, as it did the first time). Every task finds the same
    file: the previous start's tasks have all ended.
    """
    if "SLURM_JOB_ID" not in os.environ or restart_count() == 0:
        return None
    found = newest_checkpoint(checkpoint_dir) if checkpoint_dir.is_dir() else None
    if os.environ.get("SLURM_PROCID", "0") == "0":
        where = (
            f"resuming from {found}" if found else f"no checkpoint in {checkpoint_dir}: starting from scratch"
        )
        print(f"SLURM job {job_id()}, restart {restart_count()}: {where}", flush=True)
    return str(found) if found else None
