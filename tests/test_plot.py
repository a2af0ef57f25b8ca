"""scripts/plot_run.py draws what the run logged: checked against the CSV logger of the same run."""

import csv
import importlib.util

import matplotlib.image
import pytest
from conftest import ROOT, run_script

from litplate.train import train

spec = importlib.util.spec_from_file_location("plot_run", ROOT / "scripts" / "plot_run.py")
plot_run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plot_run)

EPOCHS = 3


@pytest.fixture
def run_dir(cfg_factory, tmp_path):
    train(cfg_factory(f"trainer.max_epochs={EPOCHS}", "logger=[tensorboard,csv]", "test=false"))
    return tmp_path


def csv_column(run_dir, name: str) -> list[float]:
    with (run_dir / "csv" / "metrics.csv").open() as f:
        return [float(row[name]) for row in csv.DictReader(f) if row.get(name)]


def test_panels_hold_the_logged_epoch_values(run_dir):
    fig = plot_run.figure(plot_run.read_scalars(run_dir), title="run")
    lines = {
        ax.get_title(): {line.get_label(): list(line.get_ydata()) for line in ax.lines} for ax in fig.axes
    }
    expected = {
        "learning rate": {"lr-AdamW": csv_column(run_dir, "lr-AdamW")},
        "training objective (epoch mean)": {"train/loss_epoch": csv_column(run_dir, "train/loss_epoch")},
        "validation loss": {
            "live": csv_column(run_dir, "val/loss"),
            "EMA": csv_column(run_dir, "val/loss_ema"),
        },
        "validation accuracy": {
            "live": csv_column(run_dir, "val/acc"),
            "EMA": csv_column(run_dir, "val/acc_ema"),
        },
    }
    assert set(lines) == set(expected)
    for title, curves in expected.items():
        assert set(lines[title]) == set(curves), title
        for label, values in curves.items():
            assert len(values) == EPOCHS, (title, label)
            assert lines[title][label] == pytest.approx(values, rel=1e-6), (title, label)
    assert fig.axes[0].get_yscale() == "log"


def test_cli_writes_one_png_into_the_run_dir(run_dir):
    done = run_script("scripts/plot_run.py", str(run_dir))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {run_dir / 'curves.png'}"
    height, width, _ = matplotlib.image.imread(run_dir / "curves.png").shape
    assert (width, height) == (720, 480)  # 9 x 6 inches at 80 dpi


def test_a_dir_without_events_is_one_line(tmp_path):
    done = run_script("scripts/plot_run.py", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: {tmp_path}: no TensorBoard event files under it"]
    assert list(tmp_path.iterdir()) == []
