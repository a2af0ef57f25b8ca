"""Saves the random number generators in every checkpoint and puts them back on resume."""

import random
from typing import Any

import lightning as L
import numpy as np
import torch


def collect_rng_states() -> dict[str, Any]:
    """torch, CUDA, numpy and Python RNG states as tensors and plain types (``weights_only``-loadable)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                  "has_gauss": has_gauss, "gauss": gauss},
        "python": random.getstate(),
    }  # fmt: skip
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
    cuda = states.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


class RngStateCheckpoint(L.Callback):
    """Dropout masks after a resume are the ones the uninterrupted run would have drawn.

    The states are taken when the checkpoint is written and put back just before the first
    training batch after a resume, not when the checkpoint is loaded: between loading and that
    batch the resumed run does things the uninterrupted run does not (building the model, the
    sanity-check validation, creating data iterators), and any of them may draw random numbers.
    In the uninterrupted run nothing draws between the save and that batch. The data loaders
    have their own generators (see ``ArrayDataModule``) so creating an iterator draws nothing
    from the global RNG there either.

    Under DDP the checkpoint holds rank 0's states and every rank resumes with them; ranks seeded
    alike (``seed_everything``) have equal states anyway.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return collect_rng_states()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self._pending is not None:
            set_rng_states(self._pending)
            self._pending = None
