"""tune.py: an Optuna study that prunes, driven through Hydra's compose API, with real trainings."""

import pytest
import yaml
from conftest import run_script
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

pytest.importorskip("optuna_integration")

EPOCHS = 4
# One learning rate that learns, one that cannot: the second is pruned once the first has run.
STUDY = [
    "hydra.sweeper.n_trials=4",
    "hydra.sweeper.params={model.optimizer.lr:'choice(0.003, 0.0000001)',model.net.dropout:'0.1',"
    "model.regularization.l2:'0.0',data.batch_size:'64'}",  # fixed values: only the rate is searched
    f"trainer.max_epochs={EPOCHS}",
    "trainer.enable_progress_bar=false",
    "~callbacks.progress_bar",
    "~callbacks.ema",
]


def val_acc(trial_dir) -> list[float]:
    events = EventAccumulator(str(trial_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    return [e.value for e in events.Scalars("val/acc")]


def tune(tmp_path, *overrides: str) -> dict:
    done = run_script("tune.py", *STUDY, *overrides, f"paths.log_dir={tmp_path}")
    assert done.returncode == 0, done.stderr[-3000:]
    (study_dir,) = (tmp_path / "tune" / "runs").iterdir()
    results = yaml.safe_load((study_dir / "optimization_results.yaml").read_text())
    results["dir"] = study_dir
    return results


@pytest.mark.slow
def test_median_pruner_stops_the_hopeless_trial_after_reporting_every_epoch(tmp_path):
    results = tune(tmp_path, "pruner=median", "pruner.n_startup_trials=1", "pruner.n_warmup_steps=1")
    trials = results["trials"]
    assert len(trials) == 4
    hopeless = {t["number"] for t in trials if t["params"]["model.optimizer.lr"] < 1e-6}
    learned = min(t["number"] for t in trials if t["number"] not in hopeless)
    # Once a trial has learned, every later draw of the hopeless rate is stopped early, and only those.
    pruned = {t["number"] for t in trials if t["state"] == "PRUNED"}
    assert pruned == {n for n in hopeless if n > learned} != set(), trials
    for t in trials:
        trained = val_acc(results["dir"] / str(t["number"]))
        # The pruning callback saw every validation epoch the run logged, and nothing more.
        assert len(trained) == t["epochs"]
        assert t["epochs"] == EPOCHS if t["state"] == "COMPLETE" else 2 <= t["epochs"] < EPOCHS
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    assert results["best_value"] == pytest.approx(max(t["value"] for t in complete))
    assert results["best_params"]["model.optimizer.lr"] == 0.003
    assert results["epochs_trained"] == sum(t["epochs"] for t in trials) < 4 * EPOCHS
    # Trials choose on validation only: none looked at the test split.
    for t in trials:
        events = EventAccumulator(str(results["dir"] / str(t["number"]) / "tensorboard"))
        assert "test/acc" not in events.Reload().Tags()["scalars"]


@pytest.mark.slow
def test_without_a_pruner_every_trial_trains_every_epoch(tmp_path):
    results = tune(tmp_path, "pruner=none", "hydra.sweeper.n_trials=2")
    assert [t["state"] for t in results["trials"]] == ["COMPLETE", "COMPLETE"]
    assert results["epochs_trained"] == 2 * EPOCHS


def test_an_unknown_pruner_is_one_line_naming_the_options(tmp_path):
    done = run_script("tune.py", "pruner=hyperband2", f"paths.log_dir={tmp_path}")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "pruner" in line and "median" in line and "successive_halving" in line
