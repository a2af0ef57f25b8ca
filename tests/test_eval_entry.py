"""evaluate(): from Python with Hydra's compose API, which checkpoint it takes, and old checkpoints."""

import pytest
import torch
from conftest import make_cfg
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from litplate.eval import evaluate
from litplate.runtime.app import CONFIG_DIR
from litplate.runtime.errors import ConfigError
from litplate.train import train

SHORT = ["trainer.max_epochs=2", "trainer.limit_train_batches=4", "trainer.accelerator=cpu",
         "trainer.enable_progress_bar=false"]  # fmt: skip


def composed(name: str, overrides: list[str], with_hydra: bool):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR):
        cfg = compose(name, overrides=overrides, return_hydra_config=with_hydra)
    GlobalHydra.instance().clear()
    return cfg


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    logs = tmp_path_factory.mktemp("logs")
    metrics = train(composed("train", [*SHORT, f"paths.log_dir={logs}"], with_hydra=False))
    (run,) = (logs / "train" / "runs").iterdir()
    return logs, run, metrics


@pytest.mark.parametrize("with_hydra", [True, False])
def test_evaluate_from_python_takes_the_newest_runs_best_checkpoint(trained, with_hydra, capsys):
    logs, run, metrics = trained
    evaluated = evaluate(
        composed("eval", [f"paths.log_dir={logs}", "trainer.enable_progress_bar=false"], with_hydra)
    )
    out = capsys.readouterr().out
    best = next((run / "checkpoints").glob("epoch_*.ckpt"))
    assert f"ckpt_path=null: the best checkpoint of the newest training run, {best}" in out
    assert evaluated["test/acc"] == pytest.approx(metrics["test/acc"], abs=1e-6)


def test_ckpt_path_last_is_the_newest_runs_last_checkpoint(trained, capsys):
    logs, run, _ = trained
    evaluate(composed("eval", [f"paths.log_dir={logs}", "ckpt_path=last"], with_hydra=False))
    assert f"{run / 'checkpoints' / 'last.ckpt'}" in capsys.readouterr().out


def test_a_run_in_a_directory_of_its_own_is_found_too(tmp_path, capsys):
    # The README's session: python train.py hydra.run.dir=logs/my_run, then python eval.py.
    logs = tmp_path / "logs"
    train(make_cfg(logs / "my_run", [*SHORT, f"paths.log_dir={logs}"]))
    evaluate(composed("eval", [f"paths.log_dir={logs}"], with_hydra=False))
    assert (
        f"the best checkpoint of the newest training run, {logs / 'my_run' / 'checkpoints'}"
        in capsys.readouterr().out
    )


def test_a_limit_that_leaves_no_test_batch_is_one_line(trained):
    logs, _, _ = trained
    overrides = [f"paths.log_dir={logs}", "trainer.limit_test_batches=0.001"]
    with pytest.raises(ConfigError, match=r"^trainer.limit_test_batches=0.001 leaves 0 of 1 test batches"):
        evaluate(composed("eval", overrides, with_hydra=False))


def test_a_checkpoint_from_before_a_rename_is_one_line(trained, tmp_path):
    _, run, _ = trained
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["config"]["model"]["_target_"] = "oldname.models.Classifier"
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    with pytest.raises(ConfigError) as error:
        evaluate(composed("eval", [f"ckpt_path={old}"], with_hydra=False))
    message = str(error.value)
    assert "\n" not in message
    # Another package's class: refused before anything is imported (a checkpoint is untrusted input).
    assert message.startswith(f"ckpt_path: refused to build from {old}: "), message
    assert "model._target_='oldname.models.Classifier' is outside the trusted packages" in message
