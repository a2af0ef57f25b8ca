"""``model.compile=true`` compiles the net in place: checkpoint keys stay plain and eval.py loads them."""

import pytest
import torch

from litplate.eval import evaluate
from litplate.train import train

pytestmark = pytest.mark.slow


def test_compiled_model_checkpoint_loads_in_eval(cfg_factory, tmp_path):
    torch._dynamo.reset()
    metrics = train(
        cfg_factory(
            "model.compile=true",
            "model.net.hidden=[32]",
            "data.batch_size=128",
            "trainer.max_epochs=1",
            "~logger.tensorboard",
            "~callbacks.lr_monitor",
        )
    )
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # the net really was compiled
    best = next((tmp_path / "checkpoints").glob("epoch_*.ckpt"))
    keys = list(torch.load(best, weights_only=True)["state_dict"])
    assert keys and not any("_orig_mod" in k for k in keys), keys

    evaluated = evaluate(cfg_factory(f"ckpt_path={best}", "trainer.accelerator=cpu", config_name="eval"))
    assert evaluated["test/acc"] == pytest.approx(metrics["test/acc"], abs=1e-6)
