"""Loading checkpoints as untrusted input: weights only, and clear errors for wrong files."""

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from litplate.config_checks import ConfigError


def load_checkpoint(path: str | Path, key: str = "ckpt_path") -> dict[str, Any]:
    """``torch.load(weights_only=True)``: a checkpoint is a pickle, and a full unpickle can run code."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{key}={str(path)!r}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError) as error:
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise ConfigError(f"{key}={str(path)!r} is not a loadable checkpoint ({reason})") from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(f"{key}={str(path)!r} is not a Lightning checkpoint (no 'state_dict')")
    return checkpoint


def load_weights(model: nn.Module, state_dict: dict[str, torch.Tensor], key: str = "ckpt_path") -> None:
    """``load_state_dict`` that names the first key that does not fit, in one line."""
    expected = model.state_dict()
    for name, tensor in expected.items():
        if name not in state_dict:
            raise ConfigError(f"{key}: checkpoint is for a different model: '{name}' is missing from it")
        if state_dict[name].shape != tensor.shape:
            raise ConfigError(
                f"{key}: checkpoint is for a different model: '{name}' has shape "
                f"{tuple(state_dict[name].shape)}, the model expects {tuple(tensor.shape)}"
            )
    extra = next((name for name in state_dict if name not in expected), None)
    if extra is not None:
        raise ConfigError(f"{key}: checkpoint is for a different model: unexpected key '{extra}'")
    model.load_state_dict(state_dict)
