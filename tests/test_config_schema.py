"""The config schema, and checkpoints as untrusted input, for train.py (resume) and eval.py.

Bad values are checked in-process: each component refuses its own arguments when ``train()`` builds
it, before anything is written. Checkpoint mistakes run the real entry points, several at once in
threads since each spends most of its seconds importing.
"""

import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from conftest import FAST, make_cfg, run_script

from litplate.runtime.errors import ConfigError
from litplate.train import train

# overrides -> the one line it must produce (key, value given, what is allowed). Components of
# Lightning and torch refuse some values themselves: their line names the component's key.
BAD_VALUES = {
    "callbacks.ema.decay=1.0": "callbacks.ema.decay=1.0 is not allowed: use a number in (0, 1)",
    "callbacks.ema.decay=0": "callbacks.ema.decay=0 is not allowed: use a number in (0, 1)",
    "model.net.dropout=1": "model.net.dropout=1 is not allowed: use a number in [0, 1)",
    "model.regularization.l1=-1e-5": "model.regularization.l1=-1e-05 is not allowed: use a number >= 0",
    "data.batch_size=0": "data.batch_size=0 is not allowed: use an integer >= 1",
    "data.batch_size=abc": "data.batch_size='abc' is not allowed: use an integer >= 1",
    "trainer.accumulate_grad_batches=0": "trainer.accumulate_grad_batches=0 is not allowed: "
    "use an integer >= 1",
    "trainer.devices=0": "trainer.devices=0 is not allowed: use an integer >= 1, -1 (all devices), 'auto', "
    "or device ids",
    "trainer.devices=two": "trainer: `devices` selected with `CPUAccelerator` should be an int > 0.",
    "model.scheduler.factor=1.5": "model.scheduler.factor=1.5 is not allowed: use a number in [0, 1)",
    "model.scheduler.patience=-1": "model.scheduler.patience=-1 is not allowed: use an integer >= 0",
    "model.net.hidden=[256,0]": "model.net.hidden=[256, 0] is not allowed: "
    "use an integer >= 1, or a list of them",
    # model.num_classes is gone: the number of classes is the data's.
    "data=synthetic data.num_classes=1": "data.num_classes=1 is not allowed: use an integer >= 2",
    "train=yes": "train='yes' is not allowed: use true or false",
    "trainer.check_val_every_n_epoch=0": "trainer.check_val_every_n_epoch=0 is not allowed: "
    "use an integer >= 1",
    "callbacks.model_checkpoint.save_top_k=-2": "callbacks.model_checkpoint.save_top_k=-2 is not allowed: "
    "use an integer >= -1",
    "trainer.limit_train_batches=1.5": "trainer.limit_train_batches=1.5 is not allowed: "
    "use null, a fraction in [0, 1] or a whole number of batches",
    "trainer.gradient_clip_val=-1.0": "trainer.gradient_clip_val=-1.0 is not allowed: "
    "use null or a number >= 0",
}


@pytest.mark.parametrize("override", BAD_VALUES)
def test_bad_value_is_one_line_naming_key_and_allowed_values(tmp_path, override):
    with pytest.raises(ConfigError) as error:
        train(make_cfg(tmp_path, [*FAST, *override.split()]))
    assert str(error.value) == BAD_VALUES[override]
    assert list(tmp_path.iterdir()) == []  # refused before anything was built or written


@pytest.mark.parametrize("net", ["mlp", "cnn"])
def test_shipped_configs_pass_the_schema(tmp_path, net):
    # No check_config any more: train() builds and checks everything, then fits (one short epoch).
    quick = ["~logger", "test=false", "trainer.max_epochs=1", "trainer.limit_val_batches=1"]
    metrics = train(
        make_cfg(tmp_path, [*FAST, *quick, f"model/net={net}", "trainer.limit_train_batches=0.5"])
    )
    assert "train/loss_epoch" in metrics


# ---- checkpoints as input ----------------------------------------------------------------------


class _RunsCodeWhenUnpickled:
    """A "checkpoint" whose full unpickling would create a file: ``weights_only=True`` must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("checkpoints")
    quick = [*FAST, "~logger", "~callbacks.lr_monitor", "test=false", "trainer.max_epochs=1",
             "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]  # fmt: skip
    train(make_cfg(root / "cnn_run", [*quick, "model/net=cnn"]))
    cnn = root / "cnn_run" / "checkpoints" / "last.ckpt"
    paths = {"cnn": cnn, "marker": root / "code_ran"}

    paths["garbage"] = root / "garbage.ckpt"
    paths["garbage"].write_bytes(b"this is not a checkpoint\n" * 100)
    paths["truncated"] = root / "truncated.ckpt"
    paths["truncated"].write_bytes(cnn.read_bytes()[: cnn.stat().st_size // 2])  # a copy cut short
    paths["not_lightning"] = root / "weights.pt"
    torch.save({"net.0.weight": torch.zeros(2, 2)}, paths["not_lightning"])
    paths["unsafe"] = root / "unsafe.ckpt"
    torch.save({"state_dict": {}, "payload": _RunsCodeWhenUnpickled(paths["marker"])}, paths["unsafe"])
    assert pickle.dumps(_RunsCodeWhenUnpickled(paths["marker"]))  # the payload really pickles

    # A checkpoint whose stored run config says MLP but whose weights are the CNN's (eval.py builds
    # the model from the config): eval must name the first key that does not fit.
    mismatched = torch.load(cnn, weights_only=True)
    mismatched["config"]["model"] = torch.load(cnn, weights_only=True)["config"]["model"] | {
        "net": {"_target_": "litplate.models.nets.MLP", "hidden": [256, 256], "dropout": 0.2},
    }
    paths["config_mismatch"] = root / "mismatch.ckpt"
    torch.save(mismatched, paths["config_mismatch"])
    return paths


# id -> (script, ckpt key, what the error line must contain). The MLP's first weight is net.1.weight
# (net.0 is its Flatten).
CKPT_CASES = {
    "train_garbage": ("train.py", "garbage", ["is not a loadable checkpoint"]),
    "train_truncated": ("train.py", "truncated", ["is not a loadable checkpoint"]),
    "train_unsafe_pickle": ("train.py", "unsafe", ["is not a loadable checkpoint", "weights_only", "open"]),
    "train_other_model": ("train.py", "cnn", ["checkpoint is for a different model", "'net.1.weight'"]),
    "eval_not_lightning": ("eval.py", "not_lightning", ["is not a Lightning checkpoint (no 'state_dict')"]),
    "eval_unsafe_pickle": ("eval.py", "unsafe", ["is not a loadable checkpoint", "weights_only", "open"]),
    "eval_other_model": (
        "eval.py",
        "config_mismatch",
        ["checkpoint is for a different model", "'net.1.weight'"],
    ),
}


@pytest.fixture(scope="module")
def ckpt_results(checkpoints, tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt_runs")

    def run(case: str):
        script, key, _ = CKPT_CASES[case]
        return run_script(script, f"ckpt_path={checkpoints[key]}", f"hydra.run.dir={root / case}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        return root, dict(zip(CKPT_CASES, pool.map(run, CKPT_CASES), strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("case", CKPT_CASES)
def test_bad_checkpoint_is_one_line_and_nothing_is_written(checkpoints, ckpt_results, case):
    root, result = ckpt_results[0], ckpt_results[1][case]
    script, key, expected = CKPT_CASES[case]
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ckpt_path"), line
    for text in expected:
        assert text in line, line
    assert not (root / case / "checkpoints").exists()
    assert not checkpoints["marker"].exists()  # weights_only=True: the pickle's code never ran
