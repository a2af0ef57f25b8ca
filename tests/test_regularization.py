"""L1 / L2 penalties: values, gradients and what gets logged; dropout in both nets."""

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from litplate.models.nets import CNN, MLP
from litplate.runtime.assembly import build_model
from litplate.runtime.errors import ConfigError
from litplate.runtime.regularization import WeightPenalty
from litplate.train import train

DIGITS = {"input_shape": (1, 8, 8), "num_outputs": 10}


def nets() -> list[nn.Module]:
    torch.manual_seed(0)
    return [
        MLP(input_shape=(64,), num_outputs=10, hidden=[32, 16]),
        CNN(**DIGITS, channels=[4, 8], hidden=16),
    ]


def weight_tensors(net: nn.Module) -> list[torch.Tensor]:
    """The tensors a penalty should cover, picked by layer type rather than by shape."""
    return [m.weight for m in net.modules() if isinstance(m, nn.Linear | nn.Conv2d)]


@pytest.mark.parametrize("net", nets(), ids=["mlp", "cnn"])
def test_penalty_values_match_hand_computation(net):
    weights = WeightPenalty.weights(net)
    expected = weight_tensors(net)
    assert [id(w) for w in weights] == [id(w) for w in expected]
    excluded = {id(p) for m in net.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()}
    excluded |= {id(m.bias) for m in net.modules() if getattr(m, "bias", None) is not None}
    assert excluded, "the net has biases or norm parameters the penalty must skip"
    assert not excluded & {id(w) for w in weights}

    l1, l2 = WeightPenalty(l1=1e-3, l2=1e-2)(weights)
    sum_abs = sum(float(w.detach().abs().double().sum()) for w in expected)
    sum_sq = sum(float(w.detach().double().pow(2).sum()) for w in expected)
    assert float(l1) == pytest.approx(1e-3 * sum_abs, rel=1e-5)
    assert float(l2) == pytest.approx(1e-2 * sum_sq, rel=1e-5)


@pytest.mark.parametrize("net", nets(), ids=["mlp", "cnn"])
def test_penalty_gradients(net):
    l1_coef, l2_coef = 1e-3, 1e-2
    l1, l2 = WeightPenalty(l1=l1_coef, l2=l2_coef)(WeightPenalty.weights(net))
    (l1 + l2).backward()
    penalized = {id(w) for w in weight_tensors(net)}
    for name, p in net.named_parameters():
        if id(p) in penalized:
            expected = l1_coef * p.detach().sign() + 2 * l2_coef * p.detach()
            torch.testing.assert_close(p.grad, expected, msg=name)
        else:
            assert p.grad is None or not p.grad.any(), f"{name} is not a weight but got a penalty gradient"


def test_zero_coefficients_give_zero_and_no_gradient():
    net = nets()[0]
    l1, l2 = WeightPenalty(l1=0.0, l2=0.0)(WeightPenalty.weights(net))
    assert float(l1) == 0.0 and float(l2) == 0.0
    assert not l1.requires_grad and not l2.requires_grad  # nothing reaches the weights' gradients
    only_l2 = WeightPenalty(l1=0.0, l2=1e-2)(WeightPenalty.weights(net))
    assert float(only_l2[0]) == 0.0 and float(only_l2[1]) > 0


def test_zero_coefficients_leave_the_objective_as_cross_entropy(cfg_factory, fit):
    cfg = cfg_factory(
        "data=synthetic",
        "data.num_samples=300",
        "model.regularization.l1=0",
        "model.regularization.l2=0",
        "trainer.max_epochs=1",
        "~logger.tensorboard",
        "~callbacks.lr_monitor",
        "~callbacks.model_checkpoint",
    )
    m = fit(cfg).callback_metrics
    assert float(m["train/l1"]) == 0.0 and float(m["train/l2"]) == 0.0
    assert float(m["train/loss_epoch"]) == float(m["train/data_loss"])


@pytest.mark.parametrize("key", ["l1", "l2"])
def test_negative_coefficient_is_refused(cfg_factory, key):
    # The penalty names its own argument; building the model from the config adds where it sits.
    with pytest.raises(ValueError, match=rf"^{key}=-0\.1 is not allowed: use a number >= 0$"):
        WeightPenalty(**{key: -0.1})
    cfg = cfg_factory(f"model.regularization.{key}=-0.1")
    with pytest.raises(ConfigError) as error:
        build_model(cfg.model, instantiate(cfg.data))
    assert str(error.value) == f"model.regularization.{key}=-0.1 is not allowed: use a number >= 0"


def test_logged_epoch_terms_add_up(cfg_factory, fit):
    """train/loss_epoch is the data loss plus both penalties, and the penalties are really applied.

    The penalties are recomputed by hand from the weights each step sees (on_train_batch_start
    runs before the step with the same weights) and averaged with the batch sizes as weights.
    """

    class Replay(L.Callback):
        def __init__(self):
            self.rows = []  # (batch size, sum|w|, sum w^2)

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            ws = weight_tensors(pl_module.net)
            self.rows.append(
                (len(batch[1]), sum(float(w.abs().sum()) for w in ws), sum(float(w.pow(2).sum()) for w in ws))
            )

    l1, l2 = 1e-4, 1e-3
    cfg = cfg_factory(
        "data=synthetic",
        "data.num_samples=233",
        "data.batch_size=20",
        "model.net.hidden=[32]",
        f"model.regularization.l1={l1}",
        f"model.regularization.l2={l2}",
        "trainer.max_epochs=1",
        "~logger.tensorboard",
        "~callbacks.lr_monitor",
        "~callbacks.model_checkpoint",
    )
    replay = Replay()
    trainer = fit(cfg, replay)
    m = {k: float(v) for k, v in trainer.callback_metrics.items()}

    n = sum(r[0] for r in replay.rows)
    assert n == 187 and replay.rows[-1][0] == 7
    assert m["train/l1"] == pytest.approx(l1 * sum(r[0] * r[1] for r in replay.rows) / n, rel=1e-5)
    assert m["train/l2"] == pytest.approx(l2 * sum(r[0] * r[2] for r in replay.rows) / n, rel=1e-5)
    assert m["train/loss_epoch"] == pytest.approx(
        m["train/data_loss"] + m["train/l1"] + m["train/l2"], rel=1e-6
    )
    assert m["train/data_loss"] > 1.0  # cross-entropy of a barely trained 10-class model, not a penalty


def test_penalties_are_logged_by_train(cfg_factory):
    metrics = train(
        cfg_factory(
            "data=synthetic",
            "data.num_samples=300",
            "model.regularization.l1=1e-4",
            "model.regularization.l2=0",
            "trainer.max_epochs=1",
        )
    )
    assert metrics["train/l1"] > 0
    assert metrics["train/l2"] == 0
    assert metrics["train/loss_epoch"] == pytest.approx(metrics["train/data_loss"] + metrics["train/l1"])


@pytest.mark.parametrize("net", ["mlp", "cnn"])
def test_dropout_is_configurable(cfg_factory, net):
    cfg = cfg_factory(f"model/net={net}", "model.net.dropout=0.37")
    net = build_model(cfg.model, instantiate(cfg.data)).net
    dropouts = [m for m in net.modules() if isinstance(m, nn.Dropout)]
    assert dropouts and all(d.p == 0.37 for d in dropouts)


def test_dropout_is_active_in_training_only():
    net = MLP(input_shape=(8,), num_outputs=3, hidden=[64], dropout=0.5)
    x = torch.randn(4, 8)
    net.train()
    assert not torch.equal(net(x), net(x))
    net.eval()
    assert torch.equal(net(x), net(x))


def test_cnn_has_batchnorm():
    assert any(isinstance(m, nn.BatchNorm2d) for m in CNN(**DIGITS).modules())
