"""Glue for running several DDP jobs, one after another, in one process (a Hydra sweep)."""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

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
        torch = sys.modules.get("torch")  # not imported: no process group (a bad key fails before that)
        if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
