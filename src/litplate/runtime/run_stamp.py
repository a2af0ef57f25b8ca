"""The run directory's name, identical on every rank of one job.

Under torchrun or SLURM each rank runs Hydra itself, so a wall-clock timestamp can differ by a
second between ranks and scatter one run over several directories. The name comes from the
launcher's job id where there is one, else from the start time of the launching process.
Multi-node torchrun needs ``--rdzv-id`` (its default, "none", leaves only per-node facts to go on).
train.py registers it with ``use_cache=True``: a sweep copies the cache into every job's config,
so all jobs resolve ``hydra.sweep.dir`` to the same directory.
"""

import os
import time
from datetime import datetime


def _process_start(pid: int) -> float:
    """Start time of ``pid`` in seconds since the epoch (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/stat") as f:
        boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
    return boot + start_ticks / os.sysconf("SC_CLK_TCK")


def run_stamp() -> str:
    env = os.environ
    if "SLURM_JOB_ID" in env:
        array = env.get("SLURM_ARRAY_TASK_ID")
        return f"slurm-{env['SLURM_JOB_ID']}" + (f"_{array}" if array else "")
    run_id = env.get("TORCHELASTIC_RUN_ID")
    if run_id and run_id != "none":
        return f"torchrun-{run_id}"
    if run_id == "none":  # torchrun without --rdzv-id: all local ranks share the agent process
        started = datetime.fromtimestamp(_process_start(os.getppid()))
        return started.strftime("%Y-%m-%d_%H-%M-%S") + f"_torchrun{os.getppid()}"
    # Lightning's DDP children get hydra.run.dir from the parent, so they never reach here.
    return time.strftime("%Y-%m-%d_%H-%M-%S")
