"""A resumed run is the same run: 4 epochs straight equal 2 epochs + resume to 4, bit for bit.

On CPU, with shuffling, dropout, EMA and a plateau scheduler that is forced to cut the learning
rate inside the 4 epochs, so a lost or doubled plateau step, a replayed data order, a reseeded
dropout mask or a lost EMA state each change the final checkpoint.
"""

from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import FAST, assert_same_run, differences, make_cfg, run_script
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

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


def _train(output_dir: Path, *overrides: str) -> dict[str, float]:
    return train(make_cfg(output_dir, [*RUN, *overrides]))


def _load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


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
    assert_same_run(straight, _load(tmp_path / "checkpoints" / "last.ckpt"))


def test_same_seed_twice_then_resume_with_ckpt_path_last_is_bitwise_identical(straight, two_epochs, tmp_path):
    """A second 2-epoch run equals the first; resumed in place as ``python train.py
    hydra.run.dir=THAT_RUN ckpt_path=last`` does (same directory, newest file) it equals the 4 epochs."""
    _train(tmp_path, "trainer.max_epochs=2")
    assert_same_run(
        _load(two_epochs / "checkpoints" / "last.ckpt"), _load(tmp_path / "checkpoints" / "last.ckpt")
    )
    _train(tmp_path, "trainer.max_epochs=4", "ckpt_path=last")
    assert_same_run(straight, _load(tmp_path / "checkpoints" / "last.ckpt"))


def test_another_seed_gives_other_weights(two_epochs, tmp_path):
    """The comparison can fail: a run with another seed differs from the same-seed ones."""
    _train(tmp_path, "trainer.max_epochs=2", "seed=7")
    first, other = (
        _load(two_epochs / "checkpoints" / "last.ckpt"),
        _load(tmp_path / "checkpoints" / "last.ckpt"),
    )
    assert differences(first["state_dict"], other["state_dict"])


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
    assert differences(a["state_dict"], b["state_dict"])


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
    assert_same_run(
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


# ---- mid-epoch: checkpoints every N steps ------------------------------------------------------

# 10 batches an epoch (1,257 training digits, batch 128): steps 13 and 26 fall inside epochs 1 and 2.
EVERY_13 = "callbacks.step_checkpoint.every_n_train_steps=13"


def _mid_epoch_case(tmp_path: Path, *overrides: str) -> tuple[dict[str, Any], float, Path]:
    """Three epochs straight, saving step.ckpt every 13 steps. Returns the final checkpoint, the last
    epoch's mean objective, and the last step.ckpt: written at step 26, 6 of epoch 2's 10 batches done."""
    metrics = _train(tmp_path / "straight", "trainer.max_epochs=3", EVERY_13, *overrides)
    step = tmp_path / "straight" / "checkpoints" / "step.ckpt"
    saved = _load(step)
    assert (saved["global_step"], saved["epoch"]) == (26, 2)
    fit_loop = saved["loops"]["fit_loop"]
    assert fit_loop["epoch_loop.batch_progress"]["current"]["processed"] == 6
    position = fit_loop["state_dict"]["combined_loader"][0]  # the loader's, with workers in a snapshot
    assert position.get("_num_yielded", position.get("_snapshot", {}).get("_snapshot_step")) == 6
    assert saved["epoch_means"]["per_rank"][0, -1] == 6 * 128  # six batches' partial sums
    final = _load(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    return final, metrics["train/loss_epoch"], step


def test_resume_from_a_mid_epoch_checkpoint_is_bitwise_identical(tmp_path):
    straight, loss_epoch, step = _mid_epoch_case(tmp_path)
    resumed = _train(tmp_path / "resumed", "trainer.max_epochs=3", EVERY_13, f"ckpt_path={step}")
    assert_same_run(straight, _load(tmp_path / "resumed" / "checkpoints" / "last.ckpt"))
    assert resumed["train/loss_epoch"] == loss_epoch  # the interrupted epoch's mean, bit for bit

    # The comparison sees what the checkpoint adds: without the loader's position the epoch's data
    # starts over (other weights); without the partial sums the epoch's mean covers 4 batches.
    crippled = _load(step)
    crippled["loops"]["fit_loop"]["state_dict"]["combined_loader"] = None
    torch.save(crippled, tmp_path / "no_position.ckpt")
    _train(tmp_path / "no_position", "trainer.max_epochs=3", f"ckpt_path={tmp_path / 'no_position.ckpt'}")
    assert differences(
        straight["state_dict"], _load(tmp_path / "no_position" / "checkpoints" / "last.ckpt")["state_dict"]
    )
    crippled = _load(step)
    del crippled["epoch_means"]
    torch.save(crippled, tmp_path / "no_sums.ckpt")
    assert (
        _train(tmp_path / "no_sums", "trainer.max_epochs=3", f"ckpt_path={tmp_path / 'no_sums.ckpt'}")[
            "train/loss_epoch"
        ]
        != loss_epoch
    )


def test_a_run_stopped_inside_an_epoch_by_max_steps_continues_bitwise(straight, tmp_path):
    """``trainer.max_steps`` (like ``max_time``) can end fit 6 batches into epoch 2 of 10 batches.

    ``last.ckpt`` is then written at that step, with the data position and the partial sums, and
    the epoch-end hooks Lightning still runs neither step the plateau on 6 batches nor mark the
    epoch done: continued to 4 epochs, the run equals the straight one (whose plateau cut falls at
    the end of epoch 2). With Lightning's own ModelCheckpoint as ``last_checkpoint``, the file
    says "epoch 2 processed" without the position, and the continued run skips the other 4 batches.
    """
    _train(tmp_path / "stopped", "trainer.max_epochs=4", "trainer.max_steps=26")
    last = tmp_path / "stopped" / "checkpoints" / "last.ckpt"
    saved = _load(last)
    assert saved["global_step"] == 26 and saved["epoch"] == 2
    assert saved["lr_schedulers"][0]["num_bad_epochs"] == 1  # not stepped on the partial epoch
    _train(tmp_path / "continued", "trainer.max_epochs=4", f"ckpt_path={last}")
    assert_same_run(straight, _load(tmp_path / "continued" / "checkpoints" / "last.ckpt"))

    plain = "callbacks.last_checkpoint._target_=lightning.pytorch.callbacks.ModelCheckpoint"
    _train(tmp_path / "plain", "trainer.max_epochs=4", "trainer.max_steps=26", plain)
    _train(
        tmp_path / "plain_continued",
        "trainer.max_epochs=4",
        plain,
        f"ckpt_path={tmp_path / 'plain' / 'checkpoints' / 'last.ckpt'}",
    )
    assert (
        _load(tmp_path / "plain_continued" / "checkpoints" / "last.ckpt")["global_step"]
        == 36
        < straight["global_step"]
    )


@pytest.mark.slow
def test_resume_from_a_mid_epoch_checkpoint_with_loader_workers_is_bitwise_identical(tmp_path):
    straight, loss_epoch, step = _mid_epoch_case(tmp_path, "data.num_workers=2")
    resumed = _train(
        tmp_path / "resumed", "trainer.max_epochs=3", EVERY_13, "data.num_workers=2", f"ckpt_path={step}"
    )
    assert_same_run(straight, _load(tmp_path / "resumed" / "checkpoints" / "last.ckpt"))
    assert resumed["train/loss_epoch"] == loss_epoch


@pytest.mark.slow
def test_resume_from_a_mid_epoch_checkpoint_under_ddp_is_bitwise_identical(tmp_path):
    """Two gloo processes: 629 samples per rank, 5 batches of 128 an epoch; step.ckpt every 7 steps
    is last written at step 14, 4 of epoch 2's 5 batches done, with both ranks' partial sums."""
    ddp = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp", "~callbacks.progress_bar"]
    common = [*RUN, *ddp, "trainer.max_epochs=3", "callbacks.step_checkpoint.every_n_train_steps=7"]

    def run(directory: Path, *extra: str) -> dict[str, Any]:
        done = run_script("train.py", *common, f"hydra.run.dir={directory}", *extra)
        assert done.returncode == 0, done.stderr[-3000:]
        return _load(directory / "checkpoints" / "last.ckpt")

    straight = run(tmp_path / "straight")
    step = tmp_path / "straight" / "checkpoints" / "step.ckpt"
    saved = _load(step)
    assert (saved["global_step"], saved["epoch"]) == (14, 2)
    assert saved["epoch_means"]["per_rank"].shape[0] == 2  # each rank's own partial sums
    assert saved["epoch_means"]["per_rank"][:, -1].tolist() == [4 * 128, 4 * 128]
    assert_same_run(straight, run(tmp_path / "resumed", f"ckpt_path={step}"))


# ---- the best checkpoint survives a resume ---------------------------------------------------------


def _rig_best(checkpoint_path: Path, out: Path) -> tuple[Path, Path]:
    """A copy of ``checkpoint_path`` whose best checkpoint so far scored a perfect val/acc: no later
    epoch can beat it, so a resumed run that forgets it tests a worse checkpoint."""
    ckpt = _load(checkpoint_path)
    (key,) = [k for k in ckpt["callbacks"] if k.startswith("BestCheckpoint")]
    state = ckpt["callbacks"][key]
    best = Path(state["best_model_path"])
    assert best.is_file()
    state["best_model_score"] = torch.tensor(1.0)
    state["best_k_models"] = {str(best): torch.tensor(1.0)}
    state["kth_best_model_path"], state["kth_value"] = str(best), torch.tensor(1.0)
    torch.save(ckpt, out)
    return out, best


def test_resume_into_a_new_directory_keeps_the_best_checkpoint_of_the_whole_run(two_epochs, tmp_path):
    rigged, best = _rig_best(
        two_epochs / "checkpoints" / "last.ckpt", two_epochs / "checkpoints" / "rigged.ckpt"
    )
    before = sorted((p.name, p.stat().st_mtime_ns) for p in best.parent.iterdir())
    _train(tmp_path / "new", "trainer.max_epochs=3", f"ckpt_path={rigged}")
    state = next(v for k, v in _load(tmp_path / "new" / "checkpoints" / "last.ckpt")["callbacks"].items()
                 if k.startswith("BestCheckpoint"))  # fmt: skip
    copy = tmp_path / "new" / "checkpoints" / best.name
    assert state["best_model_path"] == str(copy) and float(state["best_model_score"]) == 1.0
    assert copy.read_bytes() == best.read_bytes()  # the run's best, now in the run's own directory
    assert [p.name for p in copy.parent.glob("epoch_*")] == [best.name]  # epoch 2 did not replace it
    assert (
        sorted((p.name, p.stat().st_mtime_ns) for p in best.parent.iterdir()) == before
    )  # old dir untouched
    rigged.unlink()

    # Lightning's own ModelCheckpoint forgets the scores in a new directory: epoch 2 becomes "best".
    plain = "callbacks.model_checkpoint._target_=lightning.pytorch.callbacks.ModelCheckpoint"
    _train(tmp_path / "plain_first", "trainer.max_epochs=2", plain)
    checkpoint = tmp_path / "plain_first" / "checkpoints" / "last.ckpt"
    ckpt = _load(checkpoint)
    (key,) = [k for k in ckpt["callbacks"] if k.startswith("ModelCheckpoint{'monitor': 'val/acc'")]
    ckpt["callbacks"][key]["best_model_score"] = torch.tensor(1.0)
    torch.save(ckpt, checkpoint)
    _train(tmp_path / "plain_new", "trainer.max_epochs=3", plain, f"ckpt_path={checkpoint}")
    state = _load(tmp_path / "plain_new" / "checkpoints" / "last.ckpt")["callbacks"][key]
    assert Path(state["best_model_path"]).name == "epoch_002.ckpt" and float(state["best_model_score"]) < 1


@pytest.mark.slow
def test_resume_by_default_continues_in_the_checkpoints_own_run_directory(tmp_path):
    """``python train.py ckpt_path=RUN/checkpoints/last.ckpt``: no new run directory; the curves,
    checkpoints and the best so far go on in RUN, and Hydra's record of the original command stays."""
    run = tmp_path / "run"
    quick = [
        "trainer.enable_progress_bar=false",
        "~callbacks.progress_bar",
        f"paths.log_dir={tmp_path / 'logs'}",
    ]
    done = run_script("train.py", *quick, f"hydra.run.dir={run}", "trainer.max_epochs=2", "test=false")
    assert done.returncode == 0, done.stderr[-3000:]
    rigged, best = _rig_best(run / "checkpoints" / "last.ckpt", run / "checkpoints" / "rigged.ckpt")
    done = run_script("train.py", *quick, f"ckpt_path={rigged}", "trainer.max_epochs=3")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (tmp_path / "logs").exists()  # no other run directory
    assert "ckpt_path" not in (run / ".hydra" / "overrides.yaml").read_text()  # the original command
    (resumed,) = (run / ".hydra").glob("resumed_*")
    assert f"ckpt_path={rigged}" in (resumed / "overrides.yaml").read_text()
    assert _load(run / "checkpoints" / "last.ckpt")["epoch"] == 2
    assert [p.name for p in run.joinpath("checkpoints").glob("epoch_*")] == [best.name]
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss_epoch")] == sorted(
        {e.step for e in events.Scalars("train/loss_epoch")}
    )
    assert len(events.Scalars("val/acc")) == 3  # epochs 0-1, then 2, in one place
    assert (
        f"Restoring states from the checkpoint path at {best}" in done.stdout + done.stderr
    )  # tested the best
