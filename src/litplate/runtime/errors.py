"""Mistakes and faults a user can fix, reported as one ``error:`` line instead of a traceback.

Configuration errors exit 2, faults during a run (NaN loss, full disk) exit 1, preemption exits
128 + the signal number. ``HYDRA_FULL_ERROR=1`` shows the traceback instead. Nothing here imports
torch or Lightning: the entry points report composition errors before those are loaded.
"""

import contextlib
import difflib
import errno
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration value a user can fix; ``key`` is its dotted path in the composed config."""

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.key = key

    def under(self, prefix: str) -> "ConfigError":
        """The same error one level up: ``net.dropout`` inside ``model`` is ``model.net.dropout``."""
        return type(self)(self.message, f"{prefix}.{self.key}" if self.key else prefix)

    def __str__(self) -> str:
        if not self.key:
            return self.message
        return f"{self.key}{self.message}" if self.message.startswith("=") else f"{self.key}: {self.message}"


class ArgumentError(ConfigError):
    """A constructor argument out of range; components raise it naming the argument, builders add the path."""

    @classmethod
    def of(cls, name: str, value: Any, allowed: str) -> "ArgumentError":
        return cls(f"={value!r} is not allowed: use {allowed}", name)


# How torch re-raises an exception from a DataLoader worker: its type, called with this text and the
# worker's formatted traceback (torch.utils._utils.ExceptionWrapper.reraise).
_FROM_WORKER = re.compile(r"Caught \w+ in DataLoader worker process \d+\.\nOriginal Traceback")


class DataFileError(ConfigError):
    """A file the data reads is missing or unreadable; the message names the file, ``key`` the argument
    that led to it (``root``).

    Datamodules raise it wherever they read files, which is often a DataLoader worker process. torch
    re-raises a worker's exception in the main process as ``type(text)``, the text being the worker's
    whole traceback; its last line is this error's own ``key: message``, which is taken back out, so
    the user sees the same one line whichever process found the file. Raise it with a key: the
    ``key: message`` form is what makes that line readable back (torch passes the text alone).
    """

    def __init__(self, message: str, key: str = "") -> None:
        if _FROM_WORKER.match(message):
            last = [line for line in message.splitlines() if line.strip()][-1]
            own = last.partition(": ")[2]  # "litplate.runtime.errors.DataFileError: KEY: MESSAGE"
            key, _, message = own.partition(": ")
        super().__init__(message, key)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or inf; the message (one line) names epoch, step and loss terms."""


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (disk full, no permission); the message is one line."""


class NonFiniteCheckpointError(RuntimeError):
    """Refused to write weights holding NaN or inf: the previous checkpoints stay the good ones."""


# Errors a user fixes outside the program: free space, permissions, a read-only mount.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}
RUN_FAULTS = (NonFiniteLossError, NonFiniteCheckpointError, CheckpointWriteError)


def fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def write_error_line(error: OSError) -> str | None:
    """One line for an OSError about writing files, or None when it is some other OSError."""
    if error.errno not in WRITE_ERRNOS:
        return None
    where = f" {error.filename}" if error.filename else ""
    return f"cannot write{where}: {error.strerror or errno.errorcode[error.errno]}"


def composition_error_line(error: BaseException, config_dir: str) -> str:
    """Hydra's unknown group option, unknown key or bad override, in one line with what is allowed."""
    text = str(error)
    missing = re.search(r"Could not find '([^']+)/([^']+)'", text)
    if missing:
        group, name = missing.groups()
        options = sorted(p.stem for p in (Path(config_dir) / group).glob("*.yaml"))
        return f"{group}={name}: no such config; available: {', '.join(options)}"
    key = re.search(r"Could not override '([^']+)'", text)
    if key:
        return (
            f"{key.group(1)}: no such config key{_keys_beside(error)}; to add a new key, prefix it with '+'"
        )
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _keys_beside(error: BaseException) -> str:
    """The keys that do exist where an unknown one was given, read off OmegaConf's underlying error."""
    from omegaconf import DictConfig

    parent = getattr(error.__cause__, "parent_node", None)
    if not isinstance(parent, DictConfig):
        return ""
    keys = [str(k) for k in parent if k != "hydra"]
    close = difflib.get_close_matches(str(getattr(error.__cause__, "key", "")), keys, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{hint}; allowed keys there: {', '.join(keys)}"


def first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


@contextlib.contextmanager
def faults_in_one_line(trainer: Any) -> Iterator[None]:
    """Around ``trainer.fit``/``test``: known faults exit with one line instead of a traceback.

    A ``DataFileError`` (an unreadable image a loader worker found) goes on up as a configuration
    error under ``data``, as it is when found before training.

    Preemption exits with 128 + the signal number (143 SIGTERM, 130 SIGINT), as a shell reports a
    process killed by that signal; ``PreemptionCheckpoint`` has already said where the checkpoint is.
    """
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    try:
        yield
    except DataFileError as error:  # found by the datamodule's loaders mid-run, named by its own argument
        raise error.under("data") from None
    except SIGTERMException:
        codes = [c.exit_code() for c in trainer.callbacks if hasattr(c, "exit_code")]
        sys.exit(codes[0] if codes else 143)
    except RUN_FAULTS as error:
        fail(str(error), code=1)
    except OSError as error:
        line = write_error_line(error)
        if line is None:
            raise
        fail(line, code=1)
