"""Workaround: Lightning's DDP children re-run the whole Hydra sweep (Lightning #16694; fix proposed
in PR #18175, open; Hydra #2070).

With ``trainer.strategy=ddp`` Lightning starts ranks 1..N-1 by re-running the script with the
parent's ``sys.argv`` plus ``hydra.run.dir=...`` (``_hydra_subprocess_cmd``). Under ``-m`` that
command line is the whole sweep, so every child launches every job again: N x jobs trainings,
directories under the run dir instead of the job's, and ranks waiting on peers that never come.

``children_run_this_job_only()`` swaps in a command that is a single run of exactly this job, for
the duration of one fit or test and for Hydra runs only: the job's own overrides (a sweep value
already chosen), Hydra's overrides minus the multirun ones, and the job's output directory.
``tests/test_upstream.py`` checks that Lightning's own command still has the bug: when it fails,
delete this module and its one use in ``train.py``.
"""

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_original_cwd, to_absolute_path
from lightning.pytorch.strategies.launchers import subprocess_script

from litplate.runtime.app import quoted

# Hydra overrides the child sets itself, or that only mean something to a sweep.
_CHILD_SETS = ("hydra.mode=", "hydra.run.dir=", "hydra.job.name=", "hydra.output_subdir=")
_LOGGING = "hydra/job_logging="


def job_command(local_rank: int) -> tuple[Sequence[str], str]:
    """The command and working directory that start ``local_rank`` of the running Hydra job."""
    import __main__

    hydra = HydraConfig.get()
    if __main__.__spec__ is None:
        command = [sys.executable, to_absolute_path(sys.argv[0])]
    else:
        command = [sys.executable, "-m", __main__.__spec__.name]
    primary = [s for s in hydra.runtime.config_sources if s.provider == "main" and s.schema == "file"]
    if primary:
        command.append(f"--config-path={primary[0].path}")
    command.append(f"--config-name={hydra.job.config_name}")
    command += [
        f"--config-dir={s.path}" for s in hydra.runtime.config_sources if s.provider == "command-line"
    ]
    command += list(hydra.overrides.task)
    hydra_overrides = [o for o in hydra.overrides.hydra if not o.startswith(_CHILD_SETS)]
    command += hydra_overrides
    if not any(o.startswith(_LOGGING) for o in hydra_overrides):
        command.append(_LOGGING + "stdout")  # rank 0 alone writes the log file
    command += [
        f"hydra.run.dir={quoted(hydra.runtime.output_dir)}",
        f"hydra.job.name={hydra.job.name}_rank{local_rank}",
        "hydra.output_subdir=null",  # rank 0 alone writes .hydra/
    ]
    return command, get_original_cwd()


@contextmanager
def children_run_this_job_only() -> Iterator[None]:
    """While it is open, Lightning's DDP launcher starts children with ``job_command``."""
    if not HydraConfig.initialized():
        yield  # no Hydra run (train(cfg) from Python): Lightning re-runs sys.argv, which is right
        return
    original = subprocess_script._hydra_subprocess_cmd
    subprocess_script._hydra_subprocess_cmd = job_command
    try:
        yield
    finally:
        subprocess_script._hydra_subprocess_cmd = original
