"""A second task proves the split: the diabetes regressor uses the shared machinery unchanged.

Base module (penalties, epoch means, plateau), EMA (through the module's own evaluation code),
best-score tracking, checkpoints, eval and predict: nothing in them knows it is not a classifier.
"""

import csv

import pytest
import torch
from conftest import FAST, make_cfg
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from litplate.data import DiabetesDataModule
from litplate.eval import evaluate
from litplate.predict import predict
from litplate.runtime.app import CONFIG_DIR
from litplate.runtime.assembly import build_model
from litplate.runtime.errors import ConfigError
from litplate.train import train

REGRESSION = [*FAST, "+experiment=diabetes_regression", "trainer.max_epochs=8"]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    out = tmp_path_factory.mktemp("diabetes")
    metrics = train(make_cfg(out, REGRESSION))
    return out, metrics


def test_shapes_come_from_the_data():
    data = DiabetesDataModule()
    assert data.input_shape == (10,) and data.num_outputs == 1
    assert data.train_set.targets.is_floating_point()


def test_regressor_trains_and_logs_its_own_metrics_live_and_ema(fitted):
    _, metrics = fitted
    for name in ("val/loss", "val/mse", "val/mae", "val/r2", "val/loss_ema", "val/mse_ema", "val/r2_ema"):
        assert name in metrics, sorted(metrics)
    # The EMA is evaluated through the module's own loss: an MSE, so never negative, and equal to
    # val/mse_ema (the old callback computed cross-entropy and argmax here, and logged nonsense).
    assert metrics["val/loss_ema"] >= 0
    assert metrics["val/loss_ema"] == pytest.approx(metrics["val/mse_ema"], rel=1e-5)
    assert abs(metrics["val/mse_ema"] - metrics["val/mse"]) < 0.5 * metrics["val/mse"]
    assert metrics["val/r2"] > 0.2 and metrics["test/r2"] > 0.2  # it learned something
    assert metrics["val/mse_best"] == min(metrics["val/mse_best"], metrics["val/mse"])
    assert "train/acc" not in metrics and "val/acc" not in metrics


def test_eval_and_predict_work_for_regression(fitted, tmp_path):
    out, metrics = fitted
    best = next((out / "checkpoints").glob("epoch_*.ckpt"))
    evaluated = evaluate(make_cfg(tmp_path / "eval", [f"ckpt_path={best}"], config_name="eval"))
    assert evaluated["test/mse"] == pytest.approx(metrics["test/mse"], rel=1e-5)
    path = predict(make_cfg(tmp_path / "predict", [f"ckpt_path={best}"], config_name="predict"))
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["index", "target", "prediction"]
    targets = torch.tensor([float(r["target"]) for r in rows])
    predictions = torch.tensor([float(r["prediction"]) for r in rows])
    assert ((predictions - targets) ** 2).mean() == pytest.approx(metrics["test/mse"], rel=1e-3)


def test_a_metric_the_regressor_never_logs_fails_before_training(tmp_path):
    with pytest.raises(
        ConfigError, match=r"best.metric='val/acc_ema' is never logged: use one of .*val/mse_ema"
    ):
        train(make_cfg(tmp_path, [*REGRESSION, "best.metric=val/acc_ema"]))
    assert not (tmp_path / "checkpoints").exists()


def test_a_mode_that_does_not_fit_the_metric_fails_before_training(tmp_path):
    # With mode max on an error, checkpoints would keep the worst epoch and a sweep maximize MSE.
    with pytest.raises(ConfigError, match=r"^best.mode='max' but val/mse is better when lower: use min$"):
        train(make_cfg(tmp_path, [*REGRESSION, "best.mode=max"]))
    with pytest.raises(ConfigError, match=r"^model.scheduler.mode='min' but val/r2 is better when higher"):
        train(make_cfg(tmp_path, [*REGRESSION, "plateau_metric=val/r2"]))


def test_classifying_regression_targets_is_one_line_naming_the_fix(tmp_path):
    with pytest.raises(ConfigError) as error:
        train(make_cfg(tmp_path, [*FAST, "data=diabetes"]))
    assert str(error.value) == (
        "model.num_outputs=1 is not allowed: use data with integer labels of at least 2 classes "
        "(float targets: model=regressor)"
    )


def test_the_sweep_direction_follows_best_mode():
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR):
        regression = compose(
            "train", ["+experiment=diabetes_regression", "+hparams_search=optuna"], return_hydra_config=True
        )
        classification = compose("train", ["+hparams_search=optuna"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    assert regression.hydra.sweeper.direction == "minimize"
    assert regression.optimized_metric == "val/mse_best"
    assert classification.hydra.sweeper.direction == "maximize"
    assert classification.optimized_metric == "val/acc_best"


def test_predictions_of_a_regressor_are_its_outputs(tmp_path):
    cfg = make_cfg(tmp_path, REGRESSION)
    data = DiabetesDataModule()
    model = build_model(cfg.model, data)
    outputs = model(data.train_set.features[:5])
    assert outputs.shape == (5,)
    assert torch.equal(model.predictions(outputs)["prediction"], outputs)
