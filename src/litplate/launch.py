"""DDP child processes that re-run this Hydra job, not the command line that started the sweep.

With ``trainer.strategy=ddp`` Lightning starts ranks 1..N-1 by re-running the script with the
parent's ``sys.argv`` plus ``hydra.run.dir=...``. Under ``-m`` (multirun) that command line is the
whole sweep, so every child launches every job again: N x jobs trainings, directories under the
run dir instead of the job's, and ranks waiting on peers that never come. The command built here
is a single run of exactly this job: the job's own overrides (a sweep value already chosen),
Hydra's overrides minus the multirun ones, and the job's output directory as ``hydra.run.dir``.
"""

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from hydra._internal.utils import get_args_parser
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_original_cwd, to_absolute_path
from lightning.pytorch.strategies.launchers import subprocess_script

# Hydra overrides the child sets itself, or that only mean something to a sweep.
_CHILD_SETS = ("hydra.mode=", "hydra.run.dir=", "hydra.job.name=", "hydra.output_subdir=")
_LOGGING = "hydra/job_logging="


def _quoted(value: str) -> str:
    """A Hydra override value that is taken literally, whatever characters the path holds."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def job_command(local_rank: int) -> tuple[Sequence[str], str]:
    """The command and working directory that start ``local_rank`` of the running Hydra job."""
    import __main__

    hydra = HydraConfig.get()
    if __main__.__spec__ is None:
        command = [sys.executable, to_absolute_path(sys.argv[0])]
    else:
        command = [sys.executable, "-m", __main__.__spec__.name]
    args = get_args_parser().parse_args(sys.argv[1:])
    for flag in ("config_path", "config_name", "config_dir"):
        value = getattr(args, flag)
        if value is not None:
            command.append(f"--{flag.replace('_', '-')}={value}")
    command += list(hydra.overrides.task)
    hydra_overrides = [o for o in hydra.overrides.hydra if not o.startswith(_CHILD_SETS)]
    command += hydra_overrides
    if not any(o.startswith(_LOGGING) for o in hydra_overrides):
        command.append(_LOGGING + "stdout")  # rank 0 alone writes the log file
    command += [
        f"hydra.run.dir={_quoted(hydra.runtime.output_dir)}",
        f"hydra.job.name={hydra.job.name}_rank{local_rank}",
        "hydra.output_subdir=null",  # rank 0 alone writes .hydra/
    ]
    return command, get_original_cwd()


def relaunch_this_job_only() -> None:
    """Make Lightning's DDP launcher start children with ``job_command``.

    Lightning imports its command builder by name into this module; if a Lightning release
    renames it, fail here rather than silently launching whole sweeps again.
    """
    if not hasattr(subprocess_script, "_hydra_subprocess_cmd"):
        raise ImportError(
            "lightning.pytorch.strategies.launchers.subprocess_script._hydra_subprocess_cmd is gone: "
            "update litplate.launch for this Lightning version"
        )
    subprocess_script._hydra_subprocess_cmd = job_command


# What Lightning's launcher writes into os.environ for its children (and reads back as "already launched").
_DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


@contextmanager
def separate_process_group() -> Iterator[None]:
    """Run one job of a sweep with its own process group and its own children.

    Lightning leaves ``LOCAL_RANK`` and friends in the environment and the process group open
    after fit; the next job in the same process would then take itself for an externally launched
    rank, start no children and talk to the previous job's exited ones.
    """
    saved = {key: os.environ.get(key) for key in _DDP_ENV}
    try:
        yield
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
