"""The GPU speed presets (``conf/preset/``) on CPU: what each changes, and that eval.py loads the result."""

import lightning as L
import pytest
import torch
from torch import nn

from litplate.eval import evaluate
from litplate.runtime.errors import ConfigError
from litplate.train import train

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def fresh_compiler_and_matmul_precision():
    torch._dynamo.reset()
    before = torch.get_float32_matmul_precision()
    yield
    torch.set_float32_matmul_precision(before)  # train() sets it process-wide


def test_compiled_model_checkpoint_loads_in_eval(cfg_factory, tmp_path):
    """``model.compile=true`` compiles the net in place: checkpoint keys stay plain and eval.py loads them."""
    metrics = train(
        cfg_factory(
            "+preset=compile",
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


class _WatchesConvolutions(L.Callback):
    """Per convolution call: the output's dtype, and whether its input and kernel are NHWC."""

    def __init__(self) -> None:
        self.seen: list[tuple[torch.dtype, bool, bool]] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for module in pl_module.net.modules():
            if isinstance(module, nn.Conv2d):
                module.register_forward_hook(self._record)

    def _record(self, conv: nn.Conv2d, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        nhwc = torch.channels_last
        x_nhwc, w_nhwc = (
            inputs[0].is_contiguous(memory_format=nhwc),
            conv.weight.is_contiguous(memory_format=nhwc),
        )
        self.seen.append((output.dtype, x_nhwc, w_nhwc))


def test_all_gpu_presets_on_a_cnn_train_in_bf16_nhwc_compiled_and_eval_loads_the_checkpoint(
    cfg_factory, tmp_path
):
    """``+preset=[gpu_fast,channels_last]`` = bf16-mixed + torch.compile + TF32 matmuls + NHWC, on CPU."""
    watch = _WatchesConvolutions()
    overrides = ["model/net=cnn", "model.net.channels=[8,16]", "data.batch_size=128", "trainer.max_epochs=1"]
    metrics = train(
        cfg_factory(
            "+preset=[gpu_fast,channels_last]",
            *overrides,
            "trainer.accelerator=cpu",
            "~logger.tensorboard",
            "~callbacks.lr_monitor",
        ),
        callbacks=[watch],
    )
    assert torch.get_float32_matmul_precision() == "high"
    # A compiled forward calls no hooks; the eager calls (tracing, the EMA's validation) still show
    # the layout and the precision, the EMA's included: it evaluates under the same autocast.
    assert watch.seen and all(x_nhwc and w_nhwc for _, x_nhwc, w_nhwc in watch.seen)
    assert {dtype for dtype, _, _ in watch.seen} == {torch.bfloat16}
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0
    assert 0.5 < metrics["test/acc"] <= 1

    best = next((tmp_path / "checkpoints").glob("epoch_*.ckpt"))
    evaluated = evaluate(
        cfg_factory(
            f"ckpt_path={best}", "trainer.accelerator=cpu", "trainer.precision=bf16-mixed", config_name="eval"
        )
    )
    assert evaluated["test/acc"] == pytest.approx(metrics["test/acc"], abs=1e-6)


def test_channels_last_on_data_that_are_not_images_is_a_one_line_error(cfg_factory, tmp_path):
    with pytest.raises(ConfigError) as error:
        train(cfg_factory("+preset=channels_last", "data=diabetes", "model=regressor"))
    assert str(error.value) == (
        "model.channels_last=True is not allowed: "
        "use false: the data's samples (10,) are not images (C, H, W)"
    )
    assert not (tmp_path / "checkpoints").exists()
