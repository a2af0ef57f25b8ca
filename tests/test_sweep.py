"""The Optuna sweep, and the one place where monitored metric names are written down."""

import re

import pytest
import yaml
from conftest import ROOT, run_script
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

SEARCHED = {"model.optimizer.lr", "model.net.dropout", "model.regularization.l2", "data.batch_size"}


def events(run_dir) -> EventAccumulator:
    accumulator = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    accumulator.Reload()
    return accumulator


def tags(run_dir) -> list[str]:
    return events(run_dir).Tags()["scalars"]


def last_scalar(run_dir, tag: str) -> float:
    return events(run_dir).Scalars(tag)[-1].value


@pytest.mark.slow
def test_two_optuna_trials_write_the_best_one_to_the_sweep_dir(tmp_path):
    done = run_script(
        "train.py",
        "-m",
        "+hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        "trainer.max_epochs=1",
        "trainer.accelerator=cpu",
        "~callbacks.progress_bar",
        "trainer.enable_progress_bar=false",
        f"paths.log_dir={tmp_path}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "train" / "multiruns").iterdir()  # jobs and results share one dir
    trials = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert [p.name for p in trials] == ["0", "1"]

    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert set(results["best_params"]) == SEARCHED
    # The objective is val/acc_best (optimized_metric), as each trial logged it.
    scores = {p.name: last_scalar(p, "val/acc_best") for p in trials}
    assert results["best_value"] == pytest.approx(max(scores.values()))
    best = max(scores, key=scores.get)
    overrides = yaml.safe_load((sweep_dir / best / ".hydra" / "overrides.yaml").read_text())
    chosen = dict(o.split("=", 1) for o in overrides if o.split("=", 1)[0] in SEARCHED)
    assert {k: float(v) for k, v in chosen.items()} == pytest.approx(
        {k: float(v) for k, v in results["best_params"].items()}
    )
    metadata = yaml.safe_load((sweep_dir / "0" / "run_metadata.yaml").read_text())
    assert "+hparams_search=optuna" in metadata["command"]
    # A search chooses on validation only: no trial looked at the test split.
    assert not any("test/acc" in tags(p) for p in trials)


@pytest.mark.slow
def test_a_study_in_sqlite_storage_continues_across_sweeps(tmp_path):
    """The README's `hydra.sweeper.storage=sqlite:///...`: a second sweep adds to the first's study."""
    import optuna

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    for sweep in ("first", "second"):
        done = run_script(
            "train.py",
            "-m",
            "+hparams_search=optuna",
            "hydra.sweeper.n_trials=1",
            f"hydra.sweeper.storage={storage}",
            "hydra.sweeper.study_name=kept",
            "trainer.max_epochs=1",
            "trainer.accelerator=cpu",
            "~callbacks.progress_bar",
            "trainer.enable_progress_bar=false",
            f"hydra.sweep.dir={tmp_path / sweep}",
        )
        assert done.returncode == 0, done.stderr[-3000:]
    study = optuna.load_study(study_name="kept", storage=storage)
    assert len(study.trials) == 2


def test_monitored_metric_names_are_written_only_in_train_yaml():
    """Checkpointing, early stopping, the plateau scheduler and the sweep read shared keys.

    Elsewhere a metric name may only set one of those keys (an experiment choosing its own).
    """
    names = re.compile(r"\b(?:train|val|test)/[a-z_]+")
    shared = ("best.metric", "plateau_metric", "optimized_metric", "metric")
    repeated = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in (ROOT / "conf").rglob("*.yaml")
        if path.name != "train.yaml"
        for line in path.read_text().splitlines()
        if names.search(line.split("#")[0]) and line.split(":")[0].strip() not in shared
    ]
    assert repeated == []


def test_shared_keys_reach_every_consumer(cfg_factory):
    cfg = cfg_factory(
        "plateau_metric=val/loss",
        "best.metric=val/loss",
        "best.mode=min",
        "callbacks=[default,early_stopping]",
        "+hparams_search=optuna",
    )
    assert cfg.model.monitor == "val/loss"
    for callback in ("model_checkpoint", "early_stopping", "best_score"):
        assert (cfg.callbacks[callback].monitor, cfg.callbacks[callback].mode) == ("val/loss", "min")
    assert cfg.optimized_metric == "val/loss_best"  # logged by the BestScore callback


@pytest.mark.parametrize(
    ("overrides", "metric", "direction"),
    [
        ([], "val/acc_best", "maximize"),
        (["best.metric=val/loss", "best.mode=min"], "val/loss_best", "minimize"),
        (["+experiment=diabetes_regression"], "val/mse_best", "minimize"),
    ],
    ids=["default", "loss", "regression"],
)
def test_sweeper_direction_and_objective_follow_best(overrides, metric, direction):
    """The sweep maximizes or minimizes as ``best.mode`` says of ``best.metric``, whose best-so-far
    value (``${best.metric}_best``) is what each trial returns."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from litplate.runtime.app import CONFIG_DIR

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR):
            cfg = compose("train", overrides=["+hparams_search=optuna", *overrides], return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    assert cfg.optimized_metric == metric
    assert cfg.hydra.sweeper.direction == direction
    assert (cfg.callbacks.best_score.monitor, cfg.callbacks.best_score.mode) == (
        metric.removesuffix("_best"),
        direction[:3],
    )
