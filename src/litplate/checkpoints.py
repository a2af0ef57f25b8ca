"""Loading checkpoints as untrusted input: weights only, and clear errors for wrong files."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from lightning import seed_everything
from omegaconf import OmegaConf
from torch import nn

from litplate.config_checks import ConfigError


def _first_reason(error: Exception) -> str:
    """The informative line of a load error; for a refused pickle, the global it would have called."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    refused = next((line for line in lines if "Unsupported global" in line), None)
    if refused:
        return (
            "refused under weights_only=True: " + refused.split("Unsupported global: ")[1].split(" was ")[0]
        )
    return lines[0][:200] if lines else type(error).__name__


def load_checkpoint(path: str | Path, key: str = "ckpt_path") -> dict[str, Any]:
    """``torch.load(weights_only=True)``: a checkpoint is a pickle, and a full unpickle can run code."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{key}={str(path)!r}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # arbitrary bytes fail in arbitrary ways (IndexError, KeyError, ...)
        reason = _first_reason(error)
        raise ConfigError(f"{key}={str(path)!r} is not a loadable checkpoint ({reason})") from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(f"{key}={str(path)!r} is not a Lightning checkpoint (no 'state_dict')")
    return checkpoint


def load_weights(model: nn.Module, state_dict: dict[str, torch.Tensor], key: str = "ckpt_path") -> None:
    """``load_state_dict`` that names the first key that does not fit, in one line."""
    check_weights_fit(model, state_dict, key)
    model.load_state_dict(state_dict)


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


def check_weights_fit(model: nn.Module, state_dict: dict[str, torch.Tensor], key: str = "ckpt_path") -> None:
    """Raise ``ConfigError`` naming the first key missing, extra or of another shape."""
    misfit = first_misfit(model.state_dict(), state_dict)
    if misfit:
        raise ConfigError(f"{key}: checkpoint is for a different model: {misfit}")


# Where the EMA callback's state lives in a checkpoint: ``checkpoint["callbacks"][EMA_STATE_KEY]``.
EMA_STATE_KEY = "EMA"


def weights_from(checkpoint: dict[str, Any], ema: bool = True) -> tuple[dict[str, torch.Tensor], str]:
    """The weights to evaluate or export, and which they are: ``"ema"`` or ``"live"``.

    The checkpoint's ``state_dict`` holds the live weights (training resumes from them); the EMA
    callback keeps its averaged weights, under the same keys, in its own callback state. A checkpoint
    written without the EMA callback falls back to the live weights, and the label says so.
    """
    state = checkpoint.get("callbacks", {}).get(EMA_STATE_KEY) if ema else None
    if state and "state_dict" in state:
        return state["state_dict"], "ema"
    return checkpoint["state_dict"], "live"


def rebuild_from_checkpoint(path: str | Path, use_ema: bool = True) -> tuple[Any, Any, str]:
    """The model (with EMA or live weights) and the datamodule, as the checkpoint's run built them.

    Both come from the run config stored in the checkpoint, so eval.py and predict.py evaluate on
    the split the model was trained against, whatever the command line composes.
    """
    checkpoint = load_checkpoint(path)
    if "config" not in checkpoint:
        raise ConfigError(
            f"ckpt_path={str(path)!r} has no run config: was it written by litplate's train.py?"
        )
    run_cfg = OmegaConf.create(checkpoint["config"])
    seed_everything(run_cfg.seed, verbose=False)
    model = instantiate(run_cfg.model)
    weights, label = weights_from(checkpoint, ema=use_ema)
    load_weights(model, weights)
    return model, instantiate(run_cfg.data), label
