"""Faults during a run (NaN loss, full disk, preemption) reported as one line and an exit code."""

import contextlib
import errno
import sys
from collections.abc import Iterator

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

from litplate.callbacks.nonfinite import NonFiniteLossError
from litplate.callbacks.preemption import EXIT_CODES, PreemptionCheckpoint
from litplate.checkpoint_io import CheckpointWriteError, NonFiniteCheckpointError

# Errors a user fixes outside the program: free space, permissions, a read-only mount.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


def write_error_line(error: OSError) -> str | None:
    """One line for an OSError about writing files, or None when it is some other OSError."""
    if error.errno not in WRITE_ERRNOS:
        return None
    where = f" {error.filename}" if error.filename else ""
    return f"cannot write{where}: {error.strerror or errno.errorcode[error.errno]}"


def _fail(message: str, code: int = 1) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


@contextlib.contextmanager
def faults_in_one_line(trainer: L.Trainer) -> Iterator[None]:
    """Around ``trainer.fit``/``test``: known faults exit with one line instead of a traceback.

    Preemption exits with 128 + the signal number (143 SIGTERM, 130 SIGINT), as a shell reports a
    process killed by that signal; ``PreemptionCheckpoint`` has already said where the checkpoint is.
    """
    try:
        yield
    except SIGTERMException:
        callback = next((c for c in trainer.callbacks if isinstance(c, PreemptionCheckpoint)), None)
        sys.exit(callback.exit_code() if callback else EXIT_CODES["SIGTERM"])
    except (NonFiniteLossError, NonFiniteCheckpointError, CheckpointWriteError) as error:
        _fail(str(error))
    except OSError as error:
        line = write_error_line(error)
        if line is None:
            raise
        _fail(line)
