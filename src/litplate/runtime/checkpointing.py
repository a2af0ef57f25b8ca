"""Checkpoints: writes that a kill, a full disk or a NaN never leave half-done; loads that run no code;
which checkpoint ``ckpt_path`` means; the run config stored inside each one.

A checkpoint is a pickle, and a full unpickle of an untrusted file can run code: every load here is
``torch.load(weights_only=True)``, and a file that is not a checkpoint, or one from another model,
fails in one line naming what does not fit.
"""

import errno
import io
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from litplate.runtime.errors import CheckpointWriteError, ConfigError, NonFiniteCheckpointError


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


# ---- loading -------------------------------------------------------------------------------------


def _load_error_reason(error: Exception) -> str:
    """The informative line of a load error; for a refused pickle, the global it would have called."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    refused = next((line for line in lines if "Unsupported global" in line), None)
    if refused:
        return (
            "refused under weights_only=True: " + refused.split("Unsupported global: ")[1].split(" was ")[0]
        )
    return lines[0][:200] if lines else type(error).__name__


def load_checkpoint(path: str | Path, key: str = "ckpt_path") -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of a Lightning checkpoint, or a ``ConfigError`` naming ``key``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"={str(path)!r}: no such checkpoint file; use an existing .ckpt file, 'last' or null", key
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # arbitrary bytes fail in arbitrary ways (IndexError, KeyError, ...)
        reason = _load_error_reason(error)
        raise ConfigError(f"={str(path)!r} is not a loadable checkpoint ({reason})", key) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(f"={str(path)!r} is not a Lightning checkpoint (no 'state_dict')", key)
    return checkpoint


def first_misfit(
    expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor], allow_extra: bool = False
) -> str | None:
    """The first key of ``expected`` missing from ``given`` or of another shape (or, unless
    ``allow_extra``, a key ``given`` has beyond them), described for an error message."""
    for name, tensor in expected.items():
        if name not in given:
            return f"'{name}' is missing from it"
        if given[name].shape != tensor.shape:
            return f"'{name}' has shape {tuple(given[name].shape)}, the model expects {tuple(tensor.shape)}"
    extra = None if allow_extra else next((name for name in given if name not in expected), None)
    return f"unexpected key '{extra}'" if extra is not None else None


def load_weights(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], key: str = "ckpt_path"
) -> None:
    """``load_state_dict`` that names the first key that does not fit, in one line."""
    check_weights_fit(model, state_dict, key)
    model.load_state_dict(state_dict)


def check_weights_fit(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], key: str = "ckpt_path"
) -> None:
    misfit = first_misfit(model.state_dict(), state_dict)
    if misfit:
        raise ConfigError(f"checkpoint is for a different model: {misfit}", key)


# Where the EMA callback's state lives in a checkpoint: ``checkpoint["callbacks"][EMA_STATE_KEY]``.
EMA_STATE_KEY = "EMA"


def weights_from(checkpoint: Mapping[str, Any], ema: bool = True) -> tuple[Mapping[str, torch.Tensor], str]:
    """The weights to evaluate or export, and which they are: ``"ema"`` or ``"live"``.

    The checkpoint's ``state_dict`` holds the live weights (training resumes from them); the EMA
    callback keeps its averaged weights, under the same keys, in its own callback state. A checkpoint
    written without the EMA callback falls back to the live weights, and the label says so.
    """
    state = checkpoint.get("callbacks", {}).get(EMA_STATE_KEY) if ema else None
    if state and "state_dict" in state:
        return state["state_dict"], "ema"
    return checkpoint["state_dict"], "live"


def run_config(checkpoint: Mapping[str, Any], path: str | Path) -> DictConfig:
    """The run config stored in a checkpoint by ``RunConfigInCheckpoint``."""
    if "config" not in checkpoint:
        raise ConfigError(
            f"={str(path)!r} has no run config: was it written by this project's train.py?", "ckpt_path"
        )
    return OmegaConf.create(checkpoint["config"])


# ---- which checkpoint ----------------------------------------------------------------------------


def newest_checkpoint(directory: Path) -> Path | None:
    """The newest ``*.ckpt`` in ``directory`` (``last.ckpt`` wins a tie with a file of the same epoch)."""
    found = sorted(directory.glob("*.ckpt"), key=lambda p: (p.stat().st_mtime_ns, p.name == "last.ckpt"))
    return found[-1] if found else None


def resume_path(ckpt_path: str | None, checkpoint_dir: Path) -> str | None:
    """``ckpt_path=last``: the newest ``*.ckpt`` in this run's checkpoint directory; else ``ckpt_path``.

    Lightning's own ``"last"`` silently trains from scratch when it finds nothing; here that is an
    error. The run directory is new for every run, so point Hydra at the old one:
    ``python train.py hydra.run.dir=logs/train/runs/STAMP ckpt_path=last``.
    """
    if ckpt_path != "last":
        return ckpt_path
    found = newest_checkpoint(checkpoint_dir)
    if found is None:
        raise ConfigError(
            f"='last': no checkpoint in {checkpoint_dir} "
            "(to resume a run, set hydra.run.dir to that run's directory)",
            "ckpt_path",
        )
    return str(found)


def best_path_in(checkpoint: Mapping[str, Any], monitor: str | None = None) -> str | None:
    """The best checkpoint a ``ModelCheckpoint`` (or subclass) recorded in the callback states."""
    for state in checkpoint.get("callbacks", {}).values():
        if not (isinstance(state, dict) and "best_model_path" in state):
            continue
        if (
            state.get("monitor")
            and (monitor is None or state["monitor"] == monitor)
            and state.get("best_model_path")
        ):
            return state["best_model_path"]
    return None


def best_checkpoint(trainer: L.Trainer, monitor: str) -> str | None:
    """The best checkpoint so far of the ``ModelCheckpoint`` that monitors ``monitor``, or None.

    Looked up by monitor, not ``trainer.checkpoint_callback`` (the first ModelCheckpoint, which
    may be the every-epoch ``last`` one when the best one is switched off).
    """
    monitored = [c for c in trainer.checkpoint_callbacks if getattr(c, "monitor", None) == monitor]
    return next((c.best_model_path for c in monitored if c.best_model_path), None)


def checkpoint_for_evaluation(ckpt_path: str | None, log_dir: str | Path) -> str:
    """``ckpt_path`` of eval/predict: a file as given; or, from the newest training run under
    ``log_dir`` (the run whose checkpoint was written last, wherever ``hydra.run.dir`` put it),
    its best checkpoint for null and its newest for ``last``. Says which file it took and why."""
    if ckpt_path not in (None, "last"):
        return ckpt_path
    given = "'last'" if ckpt_path == "last" else "null"
    found = [(newest, d) for d in Path(log_dir).glob("**/checkpoints") if (newest := newest_checkpoint(d))]
    if not found:
        raise ConfigError(
            f"={given}: no checkpoint under {log_dir}; train first, or give ckpt_path=PATH", "ckpt_path"
        )
    newest, directory = max(found, key=lambda pair: pair[0].stat().st_mtime_ns)
    chosen, kind = newest, "newest"
    if ckpt_path is None:
        best = best_path_in(load_checkpoint(newest))
        if best and Path(best).is_file():
            chosen, kind = Path(best), "best"
        else:
            kind = "newest (it records no best one)"
    chosen = chosen.resolve()
    print(f"ckpt_path={given}: the {kind} checkpoint of the newest training run, {chosen}")
    return str(chosen)


class RunConfigInCheckpoint(L.Callback):
    """Puts the resolved run config under ``checkpoint["config"]``.

    ``eval.py`` and ``predict.py`` rebuild the model and the data split from it, so a checkpoint
    evaluates on the split it was trained against even when copied away from its run directory.
    Plain containers only (``app.plain_config``): the checkpoint still loads with ``weights_only=True``.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["config"] = self.config
