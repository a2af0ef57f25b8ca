"""predict.py: a CSV of classes and probabilities for the checkpoint's own split, EMA weights by default."""

import csv

import pytest
import torch
from conftest import FAST, make_cfg, run_script
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf

from litplate.predict import predict
from litplate.runtime.assembly import build_model
from litplate.runtime.checkpointing import load_checkpoint, load_weights, weights_from
from litplate.runtime.errors import ConfigError
from litplate.train import train


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    train(make_cfg(run_dir, [*FAST, "trainer.max_epochs=1", "test=false"]))
    GlobalHydra.instance().clear()
    return run_dir / "checkpoints" / "last.ckpt"


def read_csv(path):
    with path.open() as f:
        rows = list(csv.DictReader(f))
    probs = torch.tensor([[float(r[f"prob_{c}"]) for c in range(10)] for r in rows])
    return rows, probs


def expected_probabilities(checkpoint_path, ema: bool, split: str = "test"):
    """What the checkpoint's weights say about its split, computed here without the Trainer."""
    ckpt = load_checkpoint(checkpoint_path)
    run_cfg = OmegaConf.create(ckpt["config"])
    data = instantiate(run_cfg.data)
    model = build_model(run_cfg.model, data).eval()
    weights, label = weights_from(ckpt, ema=ema)
    load_weights(model, weights)
    data.setup()
    dataset = getattr(data, f"{split}_set")
    with torch.no_grad():
        return model(dataset.features).softmax(-1), dataset.targets, label


def check_csv(path, checkpoint, ema: bool, split: str = "test") -> None:
    rows, probs = read_csv(path)
    expected, labels, _ = expected_probabilities(checkpoint, ema=ema, split=split)
    assert len(rows) == len(labels)
    assert [int(r["index"]) for r in rows] == list(range(len(rows)))
    assert list(rows[0]) == ["index", "target", "prediction", *(f"prob_{c}" for c in range(10))]
    assert [int(r["target"]) for r in rows] == labels.tolist()
    assert [int(r["prediction"]) for r in rows] == probs.argmax(1).tolist()
    assert probs.sum(1) == pytest.approx(torch.ones(len(rows)), abs=1e-4)
    assert probs == pytest.approx(expected, abs=2e-6)


@pytest.mark.slow
def test_cli_writes_class_and_probabilities_of_every_test_sample_with_ema_weights(checkpoint, tmp_path):
    done = run_script("predict.py", f"ckpt_path={checkpoint}", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "of the EMA weights" in done.stdout
    check_csv(tmp_path / "predictions.csv", checkpoint, ema=True)


def test_live_weights_and_validation_split(checkpoint, tmp_path):
    path = predict(make_cfg(tmp_path, [f"ckpt_path={checkpoint}", "use_ema=false", "split=val"], "predict"))
    assert path == tmp_path / "predictions.csv"
    check_csv(path, checkpoint, ema=False, split="val")


def test_ema_and_live_weights_predict_differently(checkpoint):
    """Otherwise the EMA default above would be indistinguishable from the live weights."""
    ema, _, ema_label = expected_probabilities(checkpoint, ema=True)
    live, _, live_label = expected_probabilities(checkpoint, ema=False)
    assert (ema_label, live_label) == ("ema", "live")
    assert (ema - live).abs().max() > 1e-3


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("split=train", "split='train' is not allowed: use one of test, val"),
        (
            "ckpt_path=CKPT.missing",
            "ckpt_path='CKPT.missing': no such checkpoint file; use an existing .ckpt file, 'last' or null",
        ),
    ],
)
def test_bad_input_fails_before_writing_anything(checkpoint, tmp_path, override, message):
    overrides = [f"ckpt_path={checkpoint}", override.replace("CKPT", str(checkpoint))]
    with pytest.raises(ConfigError) as error:
        predict(make_cfg(tmp_path, overrides, "predict"))
    assert str(error.value) == message.replace("CKPT", str(checkpoint))
    assert list(tmp_path.iterdir()) == []
