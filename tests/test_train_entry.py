"""train(): which weights the test after (or without) fitting uses."""

import pytest

from litplate.models.nets import MLP
from litplate.train import train

LIVE = "callbacks.ema.test_ema=false"


def test_without_a_best_checkpoint_the_weights_in_memory_are_tested(cfg_factory, capsys):
    # With the best-checkpoint callback off, trainer.checkpoint_callback is the every-epoch "last"
    # one; the test must say there is no best checkpoint instead of quietly testing last.ckpt.
    metrics = train(cfg_factory("~callbacks.model_checkpoint", LIVE))
    out = capsys.readouterr().out
    assert "No checkpoint to test: testing the weights in memory." in out
    assert "test/acc" in metrics


def test_train_false_tests_the_given_checkpoint(cfg_factory, tmp_path):
    # One epoch: the best checkpoint is the last one, so both tests see the same weights.
    fitted = train(cfg_factory("trainer.max_epochs=1", LIVE))
    last = tmp_path / "checkpoints" / "last.ckpt"
    retested = train(cfg_factory("trainer.max_epochs=1", "train=false", f"ckpt_path={last}", LIVE))
    assert retested["test/loss"] == pytest.approx(fitted["test/loss"], abs=1e-6)
    untrained = train(cfg_factory("train=false", LIVE))  # same seed: the same initial weights
    assert untrained["test/loss"] > fitted["test/loss"] + 0.5


def test_mlp_hidden_accepts_one_size():
    # `model.net.hidden=128` from the command line: one hidden layer (input and output shapes come
    # from the data: 1x8x8 digits images, 10 classes).
    mlp = MLP(input_shape=(1, 8, 8), num_outputs=10, hidden=128)
    linear = [(m.in_features, m.out_features) for m in mlp if hasattr(m, "out_features")]
    assert linear == [(64, 128), (128, 10)]
