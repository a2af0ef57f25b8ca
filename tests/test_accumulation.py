"""Gradient accumulation gives the big-batch step: same weights after an epoch, penalties included.

57 training samples (71 synthetic, 7 for validation, 7 for test), so every case ends unevenly:
  batch 8 x A 1  vs  batch 4 x A 2:   last window holds one micro-batch of 1 sample (a short window)
  batch 12 x A 1 vs  batch 4 x A 3:   last window holds micro-batches of 4, 4 and 1 (unequal sizes)
Lightning alone divides each micro-batch loss by A, so both tails would come out too small.
"""

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from litplate.runtime.assembly import build_model
from litplate.runtime.training_plan import TrainingPlan

DATA = [
    "data=synthetic",
    "data.num_samples=71",
    "data.num_features=16",
    "data.val_fraction=0.1",
    "data.test_fraction=0.1",
]
MODEL = [
    "model.net.hidden=[32]",
    "model.net.dropout=0.0",
    "model.regularization.l1=0.001",
    "model.regularization.l2=0.01",
    "model.scheduler=null",
]
SGD = ["model.optimizer._target_=torch.optim.SGD", "~model.optimizer.weight_decay", "model.optimizer.lr=0.2"]
ADAMW = ["model.optimizer.lr=0.01"]


def weights_after_one_epoch(cfg_factory, optimizer: list[str], batch_size: int, accumulation: int):
    cfg = cfg_factory(*DATA, *MODEL, *optimizer, f"data.batch_size={batch_size}")
    data = instantiate(cfg.data)  # its input shape (16 features) and classes build the model
    L.seed_everything(0, verbose=False)
    model = build_model(cfg.model, data)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        accumulate_grad_batches=accumulation,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=data)
    plan = TrainingPlan.from_trainer(trainer)
    assert trainer.global_step == plan.steps_per_epoch
    return plan, {k: v.clone() for k, v in model.net.state_dict().items()}


@pytest.mark.parametrize("optimizer", [SGD, ADAMW], ids=["sgd", "adamw"])
@pytest.mark.parametrize(
    ("big", "micro", "accumulation", "tail_window"),
    [(8, 4, 2, [1]), (12, 4, 3, [4, 4, 1])],
    ids=["short-last-window", "unequal-micro-batches"],
)
def test_accumulated_steps_equal_big_batch_steps(
    cfg_factory, optimizer, big, micro, accumulation, tail_window
):
    big_plan, expected = weights_after_one_epoch(cfg_factory, optimizer, big, 1)
    plan, got = weights_after_one_epoch(cfg_factory, optimizer, micro, accumulation)

    assert plan.batch_sizes()[-len(tail_window) :] == tail_window  # the case this test is about
    assert plan.steps_per_epoch == big_plan.steps_per_epoch
    for name, tensor in expected.items():
        torch.testing.assert_close(
            got[name], tensor, rtol=0, atol=1e-6, msg=lambda m, name=name: f"{name}: {m}"
        )
