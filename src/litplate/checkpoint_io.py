"""Checkpoint writes that a kill, a full disk or a NaN can never leave half-done."""

import errno
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (disk full, no permission); the message is one line."""


class NonFiniteCheckpointError(RuntimeError):
    """Refused to write weights holding NaN or inf: the previous checkpoints stay the good ones."""


def first_non_finite(state_dict: dict[str, Any]) -> str | None:
    """Name of the first floating tensor with a NaN or inf, or None."""
    for name, value in state_dict.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not value.isfinite().all():
            return name
    return None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the target's directory, fsync, then ``os.replace``.

    A reader (or a resumed run after SIGKILL) sees either the old file or the complete new one.
    Lightning's own save goes through fsspec, whose local "transaction" writes the temporary file
    in the system temp dir: when that is another filesystem the final move is a plain copy into
    the target, which a kill can cut short, and nothing is fsynced.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Serialized in memory first (as Lightning does): writing the bytes ourselves surfaces a full
    # disk as OSError(ENOSPC), where torch's zip writer reports an opaque RuntimeError.
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # Make the rename itself durable: a power cut must not bring back the old directory entry.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning ``CheckpointIO`` plugin: atomic local writes, one-line errors, no non-finite weights."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        bad = first_non_finite(checkpoint.get("state_dict", {}))
        if bad is not None:
            raise NonFiniteCheckpointError(
                f"not saving {path}: weight '{bad}' is NaN or inf (earlier checkpoints are kept)"
            )
        if storage_options is not None or "://" in str(path):  # remote storage: fsspec's own way
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        try:
            atomic_torch_save(checkpoint, path)
        except OSError as error:
            reason = error.strerror or errno.errorcode.get(error.errno or 0, str(error))
            raise CheckpointWriteError(f"cannot write checkpoint {path}: {reason}") from error
