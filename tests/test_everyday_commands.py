"""Overrides a Lightning user types without reading the docs: each is a real short run that must
train, and each checks that the override had its effect.

The runs are in-process (``train(cfg)`` on a config composed from the same overrides, after the
``GROUP=null`` rewrite that ``train.py`` applies to its command line); test_cli_forms runs the
forms that only exist on a command line through real ``train.py`` processes.
"""

import csv
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import make_cfg, run_script
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from litplate.runtime.app import CONFIG_DIR, null_groups_removed
from litplate.runtime.errors import ConfigError
from litplate.train import train

SHORT = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.accelerator=cpu",
]
DEFAULT_CALLBACKS = [
    line.strip()[2:].split(":")[0]
    for line in (Path(CONFIG_DIR) / "callbacks" / "default.yaml").read_text().splitlines()
    if line.strip().startswith("- ") and line.strip() != "- _self_"
]


class Run:
    """What a run left behind: its metrics, output, checkpoints and TensorBoard scalars."""

    def __init__(self, out: Path, metrics: dict[str, float], text: str) -> None:
        self.out, self.metrics, self.text = out, metrics, text

    def last(self) -> dict:
        return torch.load(self.out / "checkpoints" / "last.ckpt", weights_only=True)

    def scalars(self) -> dict[str, list[float]]:
        events = EventAccumulator(str(self.out / "tensorboard"))
        events.Reload()
        return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def checkpoints(run: Run) -> list[str]:
    return sorted(p.name for p in (run.out / "checkpoints").glob("*.ckpt"))


def csv_rows(run: Run) -> list[dict]:
    with (run.out / "csv" / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


# override(s) -> a check of its effect on the finished run
CASES: dict[str, tuple[list[str], Callable[[Run], None]]] = {
    "max_steps": (["trainer.max_steps=3"], lambda r: r.last()["global_step"] == 3 and "= 3" in r.text),
    "fast_dev_run": (["trainer.fast_dev_run=true"], lambda r: "test/acc" in r.metrics and not checkpoints(r)),
    "limit_fraction": (
        ["trainer.limit_train_batches=0.25"],
        lambda r: r.last()["global_step"] == 5 and "int(20 x 0.25) = 5" in r.text,
    ),
    "gradient_clip": (["trainer.gradient_clip_val=1.0"], lambda r: r.last()["global_step"] == 4),
    "gradient_clip_norm": (
        ["trainer.gradient_clip_val=0.5", "trainer.gradient_clip_algorithm=value"],
        lambda r: r.last()["global_step"] == 4,
    ),
    "accumulation": (
        ["trainer.accumulate_grad_batches=3", "trainer.limit_train_batches=null"],
        lambda r: r.last()["global_step"] == 7 and "ceil(20 / 3) = 7" in r.text,
    ),
    "no_progress_bar": (["trainer.enable_progress_bar=false"], lambda r: "Epoch 0" not in r.text),
    "plain_progress_bar": (["callbacks/progress_bar=tqdm"], lambda r: "Epoch 0: 100%" in r.text),
    "logger_null": (["logger=null"], lambda r: not (r.out / "tensorboard").exists() and checkpoints(r)),
    "logger_removed": (["~logger"], lambda r: not (r.out / "tensorboard").exists() and checkpoints(r)),
    "logger_empty": (["logger=[]"], lambda r: not (r.out / "tensorboard").exists() and checkpoints(r)),
    "two_loggers": (
        ["logger=[tensorboard,csv]"],
        lambda r: "val/acc" in r.scalars() and any(row.get("val/acc") for row in csv_rows(r)),
    ),
    "callbacks_null": (
        ["callbacks=null"],
        lambda r: "test/acc" in r.metrics and "val/acc_ema" not in r.metrics,
    ),
    "bf16": (["trainer.precision=bf16-mixed"], lambda r: r.last()["global_step"] == 4),
    "deterministic": (["trainer.deterministic=true"], lambda r: r.last()["global_step"] == 4),
    "workers": (
        ["data.num_workers=2", "data.persistent_workers=false"],
        lambda r: r.last()["global_step"] == 4,
    ),
    "persistent_workers": (
        ["data.num_workers=1", "data.persistent_workers=true"],
        lambda r: "test/acc" in r.metrics,
    ),
    "pin_memory": (["data.pin_memory=true"], lambda r: r.last()["global_step"] == 4),
    "val_every_2_epochs": (
        ["trainer.max_epochs=2", "trainer.check_val_every_n_epoch=2", "plateau_metric=train/loss_epoch"],
        lambda r: len(r.scalars()["val/acc"]) == 1,
    ),
    "val_twice_per_epoch": (
        ["trainer.val_check_interval=2", "trainer.limit_train_batches=4"],
        lambda r: len(r.scalars()["val/acc"]) == 2,
    ),
    "no_validation": (
        ["trainer.limit_val_batches=0", "best.metric=train/loss_epoch", "best.mode=min"],
        lambda r: "val/acc" not in r.scalars(),
    ),
    "log_every_step": (["trainer.log_every_n_steps=1"], lambda r: len(r.scalars()["train/loss"]) == 4),
    "cnn": (["model/net=cnn"], lambda r: any("features.0.weight" in k for k in r.last()["state_dict"])),
    "sgd": (
        ["model/optimizer=sgd"],
        lambda r: "momentum" in r.last()["optimizer_states"][0]["param_groups"][0],
    ),
    "synthetic_data": (
        ["data=synthetic", "data.num_samples=600", "data.num_features=12", "data.num_classes=3"],
        lambda r: (
            r.last()["state_dict"]["net.1.weight"].shape[1] == 12
            and r.last()["state_dict"]["net.7.weight"].shape[0] == 3
        ),
    ),
    "regression": (["+experiment=diabetes_regression"], lambda r: "test/r2" in r.metrics),
    "seed": (["seed=7"], lambda r: r.last()["global_step"] == 4),
    "overfit": (
        ["trainer.overfit_batches=2", "trainer.limit_train_batches=null"],
        lambda r: r.last()["global_step"] == 2,
    ),
    "no_sanity_check": (["trainer.num_sanity_val_steps=0"], lambda r: r.last()["global_step"] == 4),
    "profiler": (["trainer.profiler=simple"], lambda r: "FIT Profiler Report" in r.text),
    "no_checkpointing": (
        ["trainer.enable_checkpointing=false"],
        lambda r: not (r.out / "checkpoints").exists(),
    ),
    "min_epochs": (["trainer.min_epochs=1"], lambda r: r.last()["epoch"] == 0),
    **{
        f"without_{name}": ([f"~callbacks.{name}"], lambda r: "test/acc" in r.metrics)
        for name in DEFAULT_CALLBACKS
    },
}


@pytest.mark.parametrize("case", CASES)
def test_everyday_override_trains_and_takes_effect(case, tmp_path, capfd, caplog):
    overrides, check = CASES[case]
    cfg = make_cfg(tmp_path, null_groups_removed([*SHORT, *overrides]))
    metrics = train(cfg)
    captured = capfd.readouterr()
    run = Run(tmp_path, metrics, captured.out + captured.err + caplog.text)
    assert check(run), f"{case}: {overrides} did not take effect\n{run.text[-3000:]}"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "callbacks.model_checkpoint.monitor=val/los",
            "callbacks.model_checkpoint.monitor='val/los' is never logged",
        ),
        (
            "callbacks.best_score.mode=min",
            "callbacks.best_score.mode='min' but val/acc is better when higher",
        ),
        ("plateau_metric=val/acc", "model.scheduler.mode='min' but val/acc is better when higher: use max"),
    ],
)
def test_a_monitor_a_callback_cannot_see_fails_before_training(tmp_path, override, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        train(make_cfg(tmp_path, [*SHORT, override]))
    assert not (tmp_path / "checkpoints").exists()


def test_there_are_enough_everyday_commands():
    assert len(CASES) >= 25


def test_train_from_python_with_the_compose_api(tmp_path, monkeypatch):
    """As the best-known Lightning+Hydra template's tests call it: no Hydra run, hydra node included."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    monkeypatch.chdir(tmp_path)
    for with_hydra in (True, False):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONFIG_DIR):
            cfg = compose("train", overrides=SHORT, return_hydra_config=with_hydra)
        metrics = train(cfg)
        assert "test/acc" in metrics, with_hydra
    GlobalHydra.instance().clear()
    runs = list((tmp_path / "logs" / "train" / "runs").glob("*/checkpoints/last.ckpt"))
    assert runs  # the run wrote where a Hydra run would: logs/train/runs/<stamp>/


def test_train_in_a_notebook_style_script(tmp_path):
    """A notebook cell is plain Python in a fresh interpreter: compose, then train()."""
    code = (
        "from hydra import compose, initialize_config_dir\n"
        "from litplate.runtime.app import CONFIG_DIR\n"
        "from litplate.train import train\n"
        "with initialize_config_dir(config_dir=CONFIG_DIR):\n"
        f"    cfg = compose('train', overrides={SHORT!r} + ['trainer.enable_progress_bar=false'])\n"
        "print('RESULT', train(cfg)['test/acc'])\n"
    )
    script = tmp_path / "cell.py"
    script.write_text(code)
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "RESULT 0." in done.stdout


@pytest.mark.slow
def test_cli_forms(tmp_path):
    """What only a command line has: ``GROUP=null``, a typo's suggestion, eval.py without ckpt_path."""
    short = [*SHORT, "trainer.enable_progress_bar=false", f"paths.log_dir={tmp_path / 'logs'}"]
    for switch in ("callbacks=null", "logger=null"):  # the newest run then has a best checkpoint
        done = run_script("train.py", switch, *short, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        noise = ("💡 Tip", "LeafSpec", "to estimate number of stepping batches")
        assert not [n for n in noise if n in done.stdout + done.stderr]  # Lightning's noise is off
    typo = run_script("train.py", "trainer.max_epoch=3", cwd=tmp_path)
    assert typo.returncode == 2
    assert (
        typo.stderr.strip()
        .splitlines()[-1]
        .startswith("error: trainer.max_epoch: no such config key (did you mean 'max_epochs'?)")
    )
    evaluated = run_script(
        "eval.py", f"paths.log_dir={tmp_path / 'logs'}", "trainer.enable_progress_bar=false", cwd=tmp_path
    )
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "ckpt_path=null: the best checkpoint of the newest training run" in evaluated.stdout
    last = run_script("eval.py", "ckpt_path=last", f"paths.log_dir={tmp_path / 'logs'}", cwd=tmp_path)
    assert last.returncode == 0 and "last.ckpt" in last.stdout, last.stderr[-2000:]
    none = run_script("eval.py", f"paths.log_dir={tmp_path / 'empty'}", cwd=tmp_path)
    assert none.returncode == 2
    assert none.stderr.strip().splitlines()[-1].startswith("error: ckpt_path=null: no checkpoint under")
