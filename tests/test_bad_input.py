"""Configuration mistakes: one ``error:`` line naming the key and what is allowed, before training.

Each case is a real ``train.py`` (or ``eval.py``) process. They start together in threads, since
each spends most of its few seconds importing (marked slow: ten processes of a few CPU seconds).
"""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import run_script

from litplate.runtime.app import CONFIG_DIR
from litplate.runtime.errors import ConfigError
from litplate.train import train

EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))

# id: (script, overrides, what the error line must contain). MISSING stands for a path that does not exist.
CASES = {
    "negative_l1": ("train.py", ["model.regularization.l1=-0.1"], ["model.regularization.l1=-0.1", ">= 0"]),
    "dropout_one": ("train.py", ["model.net.dropout=1.0"], ["model.net.dropout=1.0", "[0, 1)"]),
    "batch_size_zero": ("train.py", ["data.batch_size=0"], ["data.batch_size=0", "an integer >= 1"]),
    "unknown_key": (
        "train.py",
        ["data.batchsize=32"],
        ["data.batchsize", "no such config key", "batch_size", "eval_batch_size", "'+'"],
    ),
    "unknown_experiment": ("train.py", ["+experiment=nope"], ["experiment=nope", *EXPERIMENTS]),
    "missing_checkpoint": (
        "train.py",
        ["ckpt_path=MISSING"],
        ["ckpt_path='MISSING'", "no such checkpoint file", "an existing .ckpt file"],
    ),
    "never_logged_monitor": (
        "train.py",
        ["model.monitor=val/accuracy"],
        ["model.monitor='val/accuracy'", "never logged", "train/loss_epoch", "val/loss", "val/acc"],
    ),
    "eval_missing_checkpoint": (
        "eval.py",
        ["ckpt_path=MISSING"],
        ["ckpt_path='MISSING'", "no such checkpoint"],
    ),
}


# The same mistakes with HYDRA_FULL_ERROR=1: a ConfigError and a composition error.
FULL_ERROR = {"full_error_rule": "model.regularization.l1=-0.1", "full_error_key": "data.batchsize=32"}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_input")
    missing = str(root / "missing.ckpt")

    def run(case: str):
        if case in FULL_ERROR:
            return run_script(
                "train.py", FULL_ERROR[case], f"hydra.run.dir={root / case}", env={"HYDRA_FULL_ERROR": "1"}
            )
        script, overrides, _ = CASES[case]
        args = [o.replace("MISSING", missing) for o in overrides]
        return run_script(script, *args, f"hydra.run.dir={root / case}")

    names = [*CASES, *FULL_ERROR]
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = dict(zip(names, pool.map(run, names), strict=True))
    return root, missing, done


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_one_line_error_before_training(results, case):
    root, missing, result = results[0], results[1], results[2][case]
    expected = [text.replace("MISSING", missing) for text in CASES[case][2]]
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    last = lines[-1]
    assert last.startswith("error: "), result.stderr[-2000:]
    assert sum(line.startswith("error:") for line in lines) == 1
    for text in expected:
        assert text in last
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert "Training plan" not in output  # nothing was fitted
    assert not (root / case).exists()  # not even Hydra's run directory is left behind


@pytest.mark.slow
@pytest.mark.parametrize("case", FULL_ERROR)
def test_hydra_full_error_shows_the_traceback(results, case):
    root, result = results[0], results[2][case]
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert not (root / case / "checkpoints").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.regularization.l2=-1", "model.regularization.l2=-1 is not allowed: use a number >= 0"),
        ("model.net.dropout=-0.1", "model.net.dropout=-0.1 is not allowed: use a number in [0, 1)"),
        ("data.batch_size=2.5", "data.batch_size=2.5 is not allowed: use an integer >= 1"),
        ("model.optimizer.lr=0", "model.optimizer.lr=0 is not allowed: use a number > 0"),
    ],
)
def test_more_rules_in_process(cfg_factory, tmp_path, override, message):
    with pytest.raises(ConfigError) as error:
        train(cfg_factory("model/net=cnn", override))
    assert str(error.value) == message
    assert not (tmp_path / "checkpoints").exists()
