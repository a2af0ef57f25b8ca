"""The command line as a user runs it: train.py writes logs, config and checkpoints; eval.py agrees."""

import re
import subprocess
import sys

import pytest
import yaml
from conftest import run_script
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

EPOCHS = 3

pytestmark = pytest.mark.slow


def printed_test_acc(stdout: str) -> str:
    """The test/acc value from Lightning's results table, as printed."""
    found = re.findall(r"test/acc\W+([0-9]+\.[0-9]+)", stdout)
    assert len(found) == 1, stdout[-3000:]
    return found[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("e2e") / "run"
    result = run_script("train.py", f"hydra.run.dir={run_dir}", f"trainer.max_epochs={EPOCHS}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result


def test_tensorboard_scalars_one_per_epoch(run):
    run_dir, _ = run
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    lr_tags = [t for t in tags if t.startswith("lr-")]
    assert lr_tags, tags
    # val/acc_best: the BestScore callback; val/*_ema: the EMA callback, through the module's metrics.
    logged = ["train/loss_epoch", "train/data_loss", "train/l2", "val/acc", "val/loss", *lr_tags]
    for tag in [*logged, "val/acc_best", "val/acc_ema", "val/loss_ema"]:
        assert tag in tags
        assert len(events.Scalars(tag)) == EPOCHS, tag
    steps = [e.step for e in events.Scalars("train/loss_epoch")]
    assert steps == sorted(set(steps))  # one value per epoch, at increasing steps
    assert len(events.Scalars("train/loss")) > EPOCHS  # the per-step curve is there too
    accuracies = [e.value for e in events.Scalars("val/acc")]
    best = [e.value for e in events.Scalars("val/acc_best")]
    assert best == [max(accuracies[: i + 1]) for i in range(EPOCHS)]  # the best so far, each epoch


def test_config_saved(run):
    run_dir, _ = run
    assert "model" in (run_dir / "config_tree.log").read_text()
    saved = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert saved["trainer"]["max_epochs"] == EPOCHS
    assert saved["data"]["_target_"] == "litplate.data.digits.DigitsDataModule"


def test_checkpoints_and_test_metrics(run):
    run_dir, result = run
    checkpoints = run_dir / "checkpoints"
    assert (checkpoints / "last.ckpt").is_file()
    best = list(checkpoints.glob("epoch_*.ckpt"))
    assert len(best) == 1  # save_top_k=1
    assert "test/loss" in result.stdout
    assert 0.5 < float(printed_test_acc(result.stdout)) <= 1.0  # digits after 3 epochs


def test_eval_reports_the_same_test_accuracy(run, tmp_path):
    run_dir, trained = run
    best = next((run_dir / "checkpoints").glob("epoch_*.ckpt"))
    assert str(best) in trained.stderr + trained.stdout  # train.py tested this checkpoint
    evaluated = run_script("eval.py", f"ckpt_path={best}", f"hydra.run.dir={tmp_path}")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert printed_test_acc(evaluated.stdout) == printed_test_acc(trained.stdout)


def test_module_entry_point(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "litplate.train", "+debug=fast", f"hydra.run.dir={tmp_path}"],
        cwd=tmp_path,  # any working directory: the configs are found from the package
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test/acc" in result.stdout
    assert (tmp_path / "config_tree.log").is_file()
