"""How fast is one EMA update? ``python scripts/bench/bench_ema.py [--reps N] [--fits N] [--threads N]``.

Per update, on two models measured in the same run:
  (a) conv-like: 50 conv 3x3 (256 -> 256 channels) + BatchNorm blocks, ~29.5M parameters in 150
      tensors plus 150 BatchNorm buffers;
  (b) 800 small Linear(16, 16) layers: 1,600 tensors.
Three ways: litplate's ``EMA.update`` (the code the callback runs), Lightning's
``EMAWeightAveraging`` (``AveragedModel.update_parameters``), and a bare ``torch._foreach_lerp_``
over prebuilt lists of the same float tensors (the floor). Then the whole-step cost on the default
experiment (``train.yaml`` as is: digits + MLP): training steps/s with and without the EMA callback,
validation off, runs alternated. Timings are medians; ratios compare numbers from this run only.
"""

import argparse
import logging
import statistics
import time
import warnings
from collections.abc import Callable

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from lightning.pytorch.callbacks import EMAWeightAveraging
from torch import nn

from litplate.runtime.app import CONFIG_DIR
from litplate.runtime.assembly import build_model
from litplate.runtime.callbacks import EMA


class Holder(L.LightningModule):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net


def conv_like() -> nn.Module:
    blocks = [nn.Sequential(nn.Conv2d(256, 256, 3, bias=False), nn.BatchNorm2d(256)) for _ in range(50)]
    return nn.Sequential(*blocks)


def many_small() -> nn.Module:
    return nn.Sequential(*[nn.Linear(16, 16) for _ in range(800)])


def median_ms(fn: Callable[[], None], reps: int, device: torch.device) -> float:
    fn()  # first call allocates
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def per_update(name: str, net: nn.Module, reps: int, device: torch.device) -> dict[str, float | str]:
    module = Holder(net).to(device)
    ours = EMA(decay=0.999)
    ours.attach(module)
    lightning = EMAWeightAveraging(decay=0.999)
    lightning.setup(None, module, "fit")
    floats = [t for t in module.state_dict(keep_vars=True).values() if t.is_floating_point()]
    live = [t.detach() for t in floats]
    bare = [t.detach().clone() for t in floats]
    tensors = sum(1 for _ in module.state_dict())
    params = sum(p.numel() for p in module.parameters())

    def run_bare() -> None:
        torch._foreach_lerp_(bare, live, 0.001)

    with torch.no_grad():
        row = {
            "model": f"{name}: {params / 1e6:.1f}M params, {tensors} tensors",
            "ours": median_ms(ours.update, reps, device),
            "lightning": median_ms(lambda: lightning._average_model.update_parameters(module), reps, device),
            "bare": median_ms(run_bare, reps, device),
        }
    return row


class StepTimer(L.Callback):
    def on_train_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        self.steps_per_s = trainer.global_step / (time.perf_counter() - self.start)


def steps_per_second(with_ema: bool, epochs: int) -> float:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR):
        cfg = compose("train")
    L.seed_everything(cfg.seed, verbose=False)
    timer = StepTimer()
    callbacks = [timer] + ([instantiate(cfg.callbacks.ema)] if with_ema else [])
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    datamodule = instantiate(cfg.data)
    trainer.fit(build_model(cfg.model, datamodule), datamodule=datamodule)
    return timer.steps_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="timed updates per method and model")
    parser.add_argument("--fits", type=int, default=3, help="alternated fits with and without EMA")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per fit (20 steps each)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(
            args.threads
        )  # on a busy machine, 1 avoids OpenMP threads waiting on each other
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)  # no per-fit banners
    warnings.filterwarnings("ignore")
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads, median of {args.reps}")

    rows = [
        per_update("(a) conv-like", conv_like(), args.reps, device),
        per_update("(b) many small", many_small(), args.reps, device),
    ]
    print(
        f"{'model':<44} {'ours ms':>9} {'Lightning ms':>13} {'bare ms':>9} {'Lightning/ours':>15} ours/bare"
    )
    for r in rows:
        print(
            f"{r['model']:<44} {r['ours']:>9.3f} {r['lightning']:>13.3f} {r['bare']:>9.3f} "
            f"{r['lightning'] / r['ours']:>14.1f}x {r['ours'] / r['bare']:>9.2f}x"
        )
    print("goals: Lightning/ours >= 20x on (a); ours/bare <= 1.3x on both")

    with_ema, without = [], []
    for _ in range(args.fits):
        without.append(steps_per_second(False, args.epochs))
        with_ema.append(steps_per_second(True, args.epochs))
    a, b = statistics.median(without), statistics.median(with_ema)
    print(
        f"default experiment (digits + MLP, CPU, training steps only): {a:.1f} steps/s without EMA, "
        f"{b:.1f} with; overhead {100 * (a / b - 1):+.1f}% (goal < 5%), "
        f"medians of {args.fits} alternated fits"
    )


if __name__ == "__main__":
    main()
