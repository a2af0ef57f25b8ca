"""The EMA callback: its convention, against a float64 reference, in checkpoints, eval and DDP.

Run as a script (``python tests/test_ema.py OUT_DIR SYNC``) this file is the DDP worker that
``test_ddp_ranks_hold_the_same_ema`` launches: Lightning's DDP re-runs the same command per rank.
"""

import math
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from litplate.eval import evaluate
from litplate.runtime.assembly import build_model
from litplate.runtime.callbacks import EMA
from litplate.runtime.checkpointing import load_checkpoint, weights_from
from litplate.runtime.errors import ConfigError
from litplate.train import train

TOL = 1e-5


def _trainer(*callbacks: L.Callback, **kwargs) -> L.Trainer:
    args = dict(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=2,
    )
    return L.Trainer(callbacks=list(callbacks), **(args | kwargs))


def _cnn_and_digits(cfg_factory, *overrides: str):
    cfg = cfg_factory("model/net=cnn", *overrides)
    L.seed_everything(cfg.seed, verbose=False)
    data = instantiate(cfg.data)
    return build_model(cfg.model, data), data


class Snapshots(L.Callback):
    """Float64 copies of every weight and float buffer: at the start and after each optimizer step."""

    def __init__(self) -> None:
        self.start: dict[str, torch.Tensor] = {}
        self.after_step: list[dict[str, torch.Tensor]] = []
        self.micro_batches = 0

    @staticmethod
    def _copy(module: nn.Module) -> dict[str, torch.Tensor]:
        return {
            k: v.detach().double().clone() for k, v in module.state_dict().items() if v.is_floating_point()
        }

    def on_train_start(self, trainer, pl_module):
        self.start = self._copy(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.micro_batches += 1
        if trainer.global_step > len(self.after_step):
            self.after_step.append(self._copy(pl_module))


def reference_ema(snap: Snapshots, decay: float, warmup: bool, every: int, start: int) -> dict:
    """The documented semantics, written out in float64 from the snapshots."""
    ema = dict(snap.start)
    t = 0
    for step, weights in enumerate(snap.after_step, start=1):
        if step <= start:
            ema = dict(weights)
        elif (step - start) % every == 0:
            d = decay**every
            d = min(d, 1 - (1 + t) ** (-2 / 3)) if warmup else d
            ema = {k: d * ema[k] + (1 - d) * weights[k] for k in ema}
            t += 1
    return ema


def _max_diff(a: dict, b: dict) -> float:
    return max((a[k].double() - b[k].double()).abs().max().item() for k in b)


# ---- the convention -------------------------------------------------------------------------------


def _ema_of_batch_means(data: torch.Tensor, batch_size: int, callback: EMA) -> torch.Tensor:
    """The seed notes' example, done with the callback: its 'model' is one buffer, the batch mean."""
    holder = nn.Module()
    holder.register_buffer("mean", torch.zeros(1))  # the notes start from ema = 0
    callback.attach(holder)
    for i in range(0, len(data), batch_size):
        holder.mean.copy_(data[i : i + batch_size].mean())
        callback.update()
    return callback.ema_state_dict()["mean"].double()


def test_seed_notes_batch_mean_example_done_right():
    """The notes weight the newest batch by 0.999 (BatchNorm's momentum convention misread as decay).

    With decay 0.999 the newest batch counts 0.001, exactly as BatchNorm with momentum = 1 - decay.
    """
    data = torch.randn(10000, generator=torch.Generator().manual_seed(0))
    decay, batch = 0.999, 5
    ema = _ema_of_batch_means(data, batch, EMA(decay=decay, warmup=False))

    bn = nn.BatchNorm1d(1, momentum=1 - decay, affine=False)
    for i in range(0, len(data), batch):
        bn(data[i : i + batch].view(-1, 1))
    assert ema.item() == pytest.approx(bn.running_mean.item(), abs=1e-6)

    # The newest batch's weight: shifting its values by 1 moves the EMA by 1 - decay.
    shifted = data.clone()
    shifted[-batch:] += 1
    moved = _ema_of_batch_means(shifted, batch, EMA(decay=decay, warmup=False)) - ema
    assert moved.item() == pytest.approx(1 - decay, rel=1e-3)

    # As an estimate of the mean: each batch k of n counts w_k = (1-d) d^(n-k) and the start (0) counts
    # d^n, so the error stays within a few sigma * sqrt(sum w_k^2) of the bias d^n * |mean|.
    n = len(data) // batch
    weights = torch.tensor([(1 - decay) * decay ** (n - k) for k in range(1, n + 1)], dtype=torch.float64)
    sigma = data.double().std() / math.sqrt(batch)
    bound = 4 * sigma * weights.square().sum().sqrt() + decay**n * data.double().mean().abs()
    assert (ema - data.double().mean()).abs().item() < bound.item()


def test_warmup_decay_schedule():
    ema = EMA(decay=0.99)
    assert ema.decay_at(0) == 0  # the first update copies: the start no longer matters
    assert ema.decay_at(1) == pytest.approx(1 - 2 ** (-2 / 3))
    assert ema.decay_at(10**6) == 0.99
    assert EMA(decay=0.99, warmup=False).decay_at(0) == 0.99
    assert EMA(decay=0.99, warmup=False, update_every_n_steps=4).decay_at(0) == pytest.approx(0.99**4)


# ---- the proof: against float64 snapshots -------------------------------------------------------------


@pytest.mark.parametrize(
    ("warmup", "every", "start"),
    [(True, 1, 0), (False, 1, 0), (True, 2, 3)],
    ids=["warmup", "no-warmup", "every2-start3"],
)
def test_matches_float64_reference_under_accumulation(cfg_factory, warmup, every, start):
    model, data = _cnn_and_digits(cfg_factory)
    ema = EMA(decay=0.9, warmup=warmup, update_every_n_steps=every, start_step=start)
    snap = Snapshots()
    trainer = _trainer(ema, snap, accumulate_grad_batches=2, limit_train_batches=15)
    trainer.fit(model, datamodule=data)

    steps = math.ceil(15 / 2)  # the last, short window steps too
    assert snap.micro_batches == 15 and trainer.global_step == steps == len(snap.after_step)
    assert ema.updates == len([s for s in range(start + 1, steps + 1) if (s - start) % every == 0])
    expected = reference_ema(snap, 0.9, warmup, every, start)
    got = ema.ema_state_dict()
    assert _max_diff(got, expected) < TOL
    # The tolerance separates the right semantics from near misses: other warmup, or the live weights.
    assert _max_diff(expected, reference_ema(snap, 0.9, not warmup, every, start)) > 100 * TOL
    assert _max_diff(expected, snap.after_step[-1]) > 100 * TOL


def test_what_is_averaged_copied_and_skipped(cfg_factory):
    model, data = _cnn_and_digits(cfg_factory)
    frozen = "net.head.5.bias"
    model.get_parameter(frozen).requires_grad_(False)
    ema = EMA(decay=0.9)
    _trainer(ema, limit_train_batches=6).fit(model, datamodule=data)

    live, averaged = model.state_dict(), ema.ema_state_dict()
    assert list(averaged) == list(live)
    bn = "net.features.1"
    assert averaged[f"{bn}.num_batches_tracked"].dtype == torch.long
    assert averaged[f"{bn}.num_batches_tracked"].item() == live[f"{bn}.num_batches_tracked"].item() == 6
    assert torch.equal(averaged[frozen], live[frozen])
    assert frozen not in ema._names
    assert not torch.allclose(averaged[f"{bn}.running_mean"], live[f"{bn}.running_mean"])

    model, data = _cnn_and_digits(cfg_factory)
    copying = EMA(decay=0.9, buffers="copy")
    _trainer(copying, limit_train_batches=6).fit(model, datamodule=data)
    assert torch.equal(
        copying.ema_state_dict()[f"{bn}.running_mean"], model.state_dict()[f"{bn}.running_mean"]
    )
    assert not torch.equal(copying.ema_state_dict()[f"{bn}.weight"], model.state_dict()[f"{bn}.weight"])


def test_ema_stays_float32_under_bf16(cfg_factory):
    model, data = _cnn_and_digits(cfg_factory)
    ema = EMA(decay=0.9)
    snap = Snapshots()
    _trainer(ema, snap, precision="bf16-true", limit_train_batches=6).fit(model, datamodule=data)
    assert model.net.head[2].weight.dtype == torch.bfloat16
    averaged = ema.ema_state_dict()
    assert averaged["net.head.2.weight"].dtype == torch.float32
    # A float32 average of bf16 weights is not itself representable in bf16.
    assert not torch.equal(averaged["net.head.2.weight"], averaged["net.head.2.weight"].bfloat16().float())
    assert _max_diff(averaged, reference_ema(snap, 0.9, True, 1, 0)) < TOL


def test_checkpoint_state_that_does_not_fit_the_model(cfg_factory):
    model, data = _cnn_and_digits(cfg_factory, "model.net.channels=[8,16]")
    ema = EMA()
    _trainer(ema, limit_train_batches=2).fit(model, datamodule=data)
    state = ema.state_dict()

    other, data = _cnn_and_digits(cfg_factory, "model.net.channels=[8,32]")
    resumed = EMA()
    resumed.load_state_dict(state)
    with pytest.raises(
        ValueError, match=r"'net.features.4.weight' has shape \(16, 8, 3, 3\).*\(32, 8, 3, 3\)"
    ):
        _trainer(resumed, limit_train_batches=2).fit(other, datamodule=data)


# ---- validation ----------------------------------------------------------------------------------------


def test_validation_logs_live_and_ema_metrics(cfg_factory):
    model, data = _cnn_and_digits(cfg_factory)
    ema = EMA(decay=0.9)
    trainer = _trainer(ema, limit_train_batches=8, limit_val_batches=None)
    trainer.fit(model, datamodule=data)
    logged = trainer.callback_metrics
    assert {"val/acc", "val/loss", "val/acc_ema", "val/loss_ema"} <= set(logged)

    # Recompute both independently: each name must measure its own weights.
    def evaluate_weights(state: dict) -> tuple[float, float]:
        copy, _ = _cnn_and_digits(cfg_factory)
        copy.load_state_dict(state)
        copy.eval()
        losses, correct, count = 0.0, 0, 0
        with torch.no_grad():
            for x, y in data.val_dataloader():
                logits = copy(x)
                losses += torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
                correct += (logits.argmax(-1) == y).sum().item()
                count += len(y)
        return losses / count, correct / count

    ema_loss, ema_acc = evaluate_weights(ema.ema_state_dict())
    live_loss, live_acc = evaluate_weights(model.state_dict())
    assert logged["val/loss_ema"].item() == pytest.approx(ema_loss, rel=1e-4)
    assert logged["val/acc_ema"].item() == pytest.approx(ema_acc, abs=1e-6)
    assert logged["val/loss"].item() == pytest.approx(live_loss, rel=1e-4)
    assert abs(ema_loss - live_loss) > 1e-3

    model, data = _cnn_and_digits(cfg_factory)
    trainer = _trainer(EMA(validate_ema=False), limit_train_batches=2)
    trainer.fit(model, datamodule=data)
    assert "val/acc" in trainer.callback_metrics and "val/acc_ema" not in trainer.callback_metrics


def test_config_checks_know_the_ema_options_and_metrics(cfg_factory, tmp_path):
    # No central check_config any more: train() checks components and metric names before it fits.
    # train=false test=false runs exactly those checks and nothing else.
    ema_metrics = cfg_factory(
        "best.metric=val/acc_ema", "optimized_metric=val/loss_ema", "train=false", "test=false"
    )
    assert train(ema_metrics) == {}
    with pytest.raises(ConfigError, match="best.metric='val/acc_ema' is never logged"):
        train(cfg_factory("best.metric=val/acc_ema", "~callbacks.ema"))
    with pytest.raises(
        ConfigError, match=r"callbacks.ema.buffers='mean' is not allowed: use one of average, copy"
    ):
        train(cfg_factory("callbacks.ema.buffers=mean"))
    with pytest.raises(ConfigError, match=r"callbacks.ema.update_every_n_steps=0 is not allowed"):
        train(cfg_factory("callbacks.ema.update_every_n_steps=0"))
    assert not (tmp_path / "checkpoints").exists()  # refused before anything trained


# ---- checkpoints, resume, test and eval.py -------------------------------------------------------------

RUN = ["model/net=cnn", "model.net.dropout=0", "callbacks.ema.decay=0.9", "data.batch_size=128"]


def _ema_of(checkpoint: dict) -> tuple[dict, int]:
    state = checkpoint["callbacks"]["EMA"]
    return state["state_dict"], state["updates"]


def test_resume_restores_the_ema_exactly(tmp_path):
    from conftest import FAST, make_cfg

    straight = make_cfg(tmp_path / "straight", [*FAST, *RUN, "test=false"])
    train(straight)
    first = make_cfg(tmp_path / "resumed", [*FAST, *RUN, "test=false", "trainer.max_epochs=1"])
    train(first)
    last = tmp_path / "resumed/checkpoints/last.ckpt"
    halfway_ema, halfway_updates = _ema_of(load_checkpoint(last))
    resumed = make_cfg(tmp_path / "resumed", [*FAST, *RUN, "test=false", f"ckpt_path={last}"])
    train(resumed)

    a = load_checkpoint(tmp_path / "straight/checkpoints/last.ckpt")
    b = load_checkpoint(tmp_path / "resumed/checkpoints/last.ckpt")
    (ema_a, updates_a), (ema_b, updates_b) = _ema_of(a), _ema_of(b)
    assert updates_a == updates_b == a["global_step"] == 2 * halfway_updates
    assert _max_diff(ema_a, ema_b) == 0
    assert _max_diff(ema_a, halfway_ema) > 1e-3  # the resumed half did update it
    # The checkpoint's state_dict is the live model, which training resumes from.
    assert _max_diff(a["state_dict"], b["state_dict"]) == 0
    assert _max_diff(a["state_dict"], ema_a) > 1e-3


def test_test_and_eval_use_ema_weights_by_default(cfg_factory, capsys):
    metrics = train(cfg_factory(*RUN))
    out = capsys.readouterr().out
    assert "Test metrics below are for the EMA weights" in out
    best = next((Path(cfg_factory().paths.output_dir) / "checkpoints").glob("epoch_*.ckpt"))

    checkpoint = load_checkpoint(best)
    assert weights_from(checkpoint)[1] == "ema" and weights_from(checkpoint, ema=False)[1] == "live"
    assert weights_from({"state_dict": checkpoint["state_dict"]}) == (checkpoint["state_dict"], "live")

    with_ema = evaluate(cfg_factory(f"ckpt_path={best}", "trainer.accelerator=cpu", config_name="eval"))
    assert "for the EMA weights of" in capsys.readouterr().out
    live = evaluate(
        cfg_factory(f"ckpt_path={best}", "use_ema=false", "trainer.accelerator=cpu", config_name="eval")
    )
    assert "for the LIVE weights of" in capsys.readouterr().out
    assert with_ema["test/loss"] == pytest.approx(metrics["test/loss"], rel=1e-6)
    assert abs(with_ema["test/loss"] - live["test/loss"]) > 1e-4

    live_in_train = train(cfg_factory(*RUN, "callbacks.ema.test_ema=false"))
    assert "are for the LIVE weights (callbacks.ema.test_ema=false)" in capsys.readouterr().out
    assert live_in_train["test/loss"] == pytest.approx(live["test/loss"], rel=1e-6)


# ---- DDP -----------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("sync", [True, False], ids=["sync_buffers", "no_sync"])
def test_ddp_ranks_hold_the_same_ema(tmp_path, sync):
    done = subprocess.run(
        [sys.executable, __file__, str(tmp_path), str(sync)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    weights = [k for k in rank0 if "running_" not in k]
    stats = [k for k in rank0 if "running_" in k]
    assert weights and stats
    assert all(torch.equal(rank0[k], rank1[k]) for k in weights)
    # BatchNorm statistics come from each rank's own batches: equal only when synchronized.
    assert all(torch.equal(rank0[k], rank1[k]) for k in stats) == sync


def _ddp_worker(out: Path, sync: bool) -> None:
    from litplate.data import DigitsDataModule
    from litplate.models import Classifier

    L.seed_everything(0, verbose=False)
    data = DigitsDataModule(batch_size=32, seed=0)
    model = Classifier(
        net={"_target_": "litplate.models.nets.CNN", "channels": [8, 16], "hidden": 32, "dropout": 0.0},
        optimizer={"_target_": "torch.optim.AdamW", "lr": 0.003},
        input_shape=data.input_shape,
        num_outputs=data.num_outputs,
    )
    ema = EMA(decay=0.9, sync_buffers=sync)
    trainer = _trainer(ema, devices=2, strategy="ddp", limit_train_batches=6, sync_batchnorm=False)
    trainer.fit(model, datamodule=data)
    torch.save(ema.ema_state_dict(), out / f"rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    _ddp_worker(Path(sys.argv[1]), sys.argv[2] == "True")
