"""A resumed run is the same run: 4 epochs straight equal 2 epochs + resume to 4, bit for bit.

On CPU, with shuffling, dropout, EMA and a plateau scheduler that is forced to cut the learning
rate inside the 4 epochs, so a lost or doubled plateau step, a replayed data order, a reseeded
dropout mask or a lost EMA state each change the final checkpoint.
"""

from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import FAST, make_cfg

from litplate.train import train

# ReduceLROnPlateau with threshold 0.99 (rel): no epoch counts as an improvement after the first,
# so with patience 1 the counter of bad epochs is 1 at the resume point and the rate is halved at
# the end of epoch 2, the first resumed epoch.
RUN = [
    *FAST,
    "~logger",
    "~callbacks.lr_monitor",
    "test=false",
    "data.batch_size=128",
    "model.net.dropout=0.3",
    "model.scheduler.patience=1",
    "+model.scheduler.threshold=0.99",
    "callbacks.ema.decay=0.9",
    "trainer.enable_model_summary=false",
]
LR = 0.003  # conf/model/optimizer/adamw.yaml

# Checkpoint entries that name the run's own directory, so they differ between any two runs.
PATH_KEYS = {"config"}


def _train(output_dir: Path, *overrides: str) -> None:
    train(make_cfg(output_dir, [*RUN, *overrides]))


def _load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _bytes(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().reshape(-1).view(torch.uint8)


def _differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Paths at which two checkpoint trees are not bitwise equal (tensors: dtype, shape and bits)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and torch.equal(_bytes(a), _bytes(b))
        )
        return [] if same else [where]
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where} keys {sorted(map(str, a.keys() ^ b.keys()))}"]
        return [d for k in a for d in _differences(a[k], b[k], f"{where}/{k}")]
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return [f"{where} length"]
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{where}[{i}]")
        ]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def _training_state(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Everything a resumed run continues from, minus file paths (ModelCheckpoint keeps its dir).

    Also minus Lightning's count of its own scheduler calls: it skips its (for ReduceLROnPlateau
    disabled, see ``TaskModule.lr_scheduler_step``) call in the epoch it resumes on, so the resumed
    count is one lower per resume. The plateau step itself happens in ``on_train_epoch_end`` and its
    state, the learning rates and the weights are compared in full.
    """
    state = {k: v for k, v in checkpoint.items() if k not in PATH_KEYS}
    state["callbacks"] = {
        k: v for k, v in checkpoint["callbacks"].items() if not k.startswith("ModelCheckpoint")
    }
    state["loops"] = {**checkpoint["loops"], "fit_loop": dict(checkpoint["loops"]["fit_loop"])}
    del state["loops"]["fit_loop"]["epoch_loop.scheduler_progress"]
    return state


def _assert_same_run(a: dict[str, Any], b: dict[str, Any]) -> None:
    diffs = _differences(_training_state(a), _training_state(b))
    assert not diffs, f"checkpoints differ at {diffs[:10]}"


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("straight")
    _train(out, "trainer.max_epochs=4")
    return _load(out / "checkpoints" / "last.ckpt")


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("two_epochs")
    _train(out, "trainer.max_epochs=2")
    return out


def test_straight_run_exercises_what_resume_could_lose(straight, two_epochs):
    """The run under test really cut the rate, used dropout and EMA: otherwise equality proves little."""
    saved = _load(two_epochs / "checkpoints" / "last.ckpt")
    assert saved["lr_schedulers"][0]["num_bad_epochs"] == 1  # the plateau count crosses the resume
    assert saved["optimizer_states"][0]["param_groups"][0]["lr"] == LR
    lrs = [group["lr"] for group in straight["optimizer_states"][0]["param_groups"]]
    assert lrs == [pytest.approx(LR * 0.5)]  # cut at the end of epoch 2, the first resumed one
    assert straight["lr_schedulers"][0]["num_bad_epochs"] == 1
    assert straight["callbacks"]["EMA"]["updates"] == straight["global_step"] > 0
    assert straight["epoch"] == 3
    assert set(straight["callbacks"]) >= {"EMA", "RngStateCheckpoint", "BestScore"}


def test_resume_from_explicit_last_ckpt_is_bitwise_identical(straight, two_epochs, tmp_path):
    _train(tmp_path, "trainer.max_epochs=4", f"ckpt_path={two_epochs / 'checkpoints' / 'last.ckpt'}")
    _assert_same_run(straight, _load(tmp_path / "checkpoints" / "last.ckpt"))


def test_same_seed_twice_then_resume_with_ckpt_path_last_is_bitwise_identical(straight, two_epochs, tmp_path):
    """A second 2-epoch run equals the first; resumed in place as ``python train.py
    hydra.run.dir=THAT_RUN ckpt_path=last`` does (same directory, newest file) it equals the 4 epochs."""
    _train(tmp_path, "trainer.max_epochs=2")
    _assert_same_run(
        _load(two_epochs / "checkpoints" / "last.ckpt"), _load(tmp_path / "checkpoints" / "last.ckpt")
    )
    _train(tmp_path, "trainer.max_epochs=4", "ckpt_path=last")
    _assert_same_run(straight, _load(tmp_path / "checkpoints" / "last.ckpt"))


def test_another_seed_gives_other_weights(two_epochs, tmp_path):
    """The comparison can fail: a run with another seed differs from the same-seed ones."""
    _train(tmp_path, "trainer.max_epochs=2", "seed=7")
    first, other = (
        _load(two_epochs / "checkpoints" / "last.ckpt"),
        _load(tmp_path / "checkpoints" / "last.ckpt"),
    )
    assert _differences(first["state_dict"], other["state_dict"])


def test_resume_restores_rng_so_dropout_masks_match(two_epochs, tmp_path):
    """Without the saved RNG state the resumed epochs draw other dropout masks (the test would see it)."""
    ckpt = _load(two_epochs / "checkpoints" / "last.ckpt")
    del ckpt["callbacks"]["RngStateCheckpoint"]
    stripped = tmp_path / "no_rng.ckpt"
    torch.save(ckpt, stripped)
    _train(tmp_path / "a", "trainer.max_epochs=3", f"ckpt_path={two_epochs / 'checkpoints' / 'last.ckpt'}")
    _train(tmp_path / "b", "trainer.max_epochs=3", f"ckpt_path={stripped}")
    a = _load(tmp_path / "a" / "checkpoints" / "last.ckpt")
    b = _load(tmp_path / "b" / "checkpoints" / "last.ckpt")
    assert _differences(a["state_dict"], b["state_dict"])


def test_ckpt_path_last_without_checkpoints_is_an_error(tmp_path):
    from litplate.runtime.errors import ConfigError

    with pytest.raises(ConfigError, match=r"ckpt_path='last': no checkpoint in .*checkpoints"):
        _train(tmp_path, "ckpt_path=last")
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.slow
def test_resume_with_data_loader_workers_is_bitwise_identical(tmp_path):
    """num_workers > 0 (persistent workers): the first resumed epoch must not replay epoch 0's order."""
    workers = ["data.num_workers=2"]
    _train(tmp_path / "straight", "trainer.max_epochs=3", *workers)
    _train(tmp_path / "resumed", "trainer.max_epochs=2", *workers)
    _train(tmp_path / "resumed", "trainer.max_epochs=3", "ckpt_path=last", *workers)
    _assert_same_run(
        _load(tmp_path / "straight" / "checkpoints" / "last.ckpt"),
        _load(tmp_path / "resumed" / "checkpoints" / "last.ckpt"),
    )


def test_resume_keeps_the_best_validation_accuracy_so_far(two_epochs, tmp_path):
    """val/acc_best (what sweeps optimize) is a max over the whole run, epochs before the resume included.

    The BestScore callback keeps it in its own checkpoint state (``callbacks["BestScore"]``).
    """
    ckpt = _load(two_epochs / "checkpoints" / "last.ckpt")
    state = ckpt["callbacks"]["BestScore"]
    assert state["monitor"] == "val/acc"
    assert 0 < float(state["best"]) < 1
    state["best"] = 1.0  # as if an epoch before the resume had been perfect
    perfect = tmp_path / "perfect_before.ckpt"
    torch.save(ckpt, perfect)
    metrics = train(make_cfg(tmp_path / "run", [*RUN, "trainer.max_epochs=3", f"ckpt_path={perfect}"]))
    assert metrics["val/acc_best"] == 1.0 > metrics["val/acc"]
