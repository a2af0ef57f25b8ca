"""The template's training loop against a hand-written PyTorch loop doing the same math, in one run.

    python scripts/bench_overhead.py [--epochs 4] [--repeats 2] [--throughput-samples 20000]

For each configuration both loops train from the same initial weights on the same batches (the
DistributedSampler order), with the same dropout masks (the global RNG is reseeded at the first
step), the same objective (cross-entropy + L1 + L2), optimizer, EMA and plateau step per epoch.
The template run keeps everything the default config does per step (metrics, logging to
TensorBoard, callbacks, progress bar) except validation and checkpoint files, which the bare loop
has no counterpart for. Printed: per-step losses agree to 5 decimals, and samples/s of each loop
over the epochs after the first (warm-up), the best of ``--repeats`` runs each.
"""

import argparse
import sys
import tempfile
import time
from typing import NamedTuple

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from torch.utils.data import DistributedSampler

from litplate.runtime.app import CONFIG_DIR, build_model
from litplate.runtime.components import build_group
from litplate.runtime.regularization import WeightPenalty

DROPOUT_SEED = 1234
BENCH = [  # no validation and no checkpoint files: the bare loop has neither
    "trainer.limit_val_batches=0",
    "trainer.num_sanity_val_steps=0",
    "~callbacks.model_checkpoint",
    "~callbacks.last_checkpoint",
    "trainer.enable_checkpointing=false",  # else Lightning adds its own ModelCheckpoint
]


def compose_cfg(overrides: list[str], output_dir: str) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[*BENCH, *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = output_dir
    return cfg


class Times(NamedTuple):
    """Wall clock and this process's CPU time: on a busy machine the CPU time still shows the work."""

    wall: float
    cpu: float

    @staticmethod
    def now() -> "Times":
        return Times(time.perf_counter(), time.process_time())

    def __sub__(self, other: "Times") -> "Times":
        return Times(self.wall - other.wall, self.cpu - other.cpu)


class Clock(L.Callback):
    """Times the epochs after the first and keeps every step's loss (as tensors: no sync)."""

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []
        self.start = self.end = Times(0.0, 0.0)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        torch.manual_seed(DROPOUT_SEED)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == 1:
            self.start = Times.now()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(outputs["loss"])

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.end = Times.now()


def template_loop(cfg: DictConfig) -> tuple[torch.Tensor, "Times"]:
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = instantiate(cfg.data)
    model = build_model(cfg.model, datamodule)
    clock = Clock()
    callbacks = [*build_group(cfg.get("callbacks"), "callbacks"), clock]
    loggers = build_group(cfg.get("logger"), "logger")
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, enable_model_summary=False
    )
    trainer.fit(model, datamodule=datamodule)
    return torch.stack(clock.losses), clock.end - clock.start


def bare_loop(cfg: DictConfig) -> tuple[torch.Tensor, "Times"]:
    """What one would write by hand: index the tensors, step, average, no framework."""
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    features, labels = datamodule.train_set.features, datamodule.train_set.targets
    shapes = {"input_shape": list(datamodule.input_shape), "num_outputs": datamodule.num_outputs}
    net = instantiate(cfg.model.net, **shapes)  # the same draws as inside Classifier.__init__
    optimizer = instantiate(cfg.model.optimizer, params=net.parameters())
    scheduler = instantiate(cfg.model.scheduler, optimizer=optimizer) if cfg.model.scheduler else None
    penalty = WeightPenalty(**cfg.model.regularization)
    weights = WeightPenalty.weights(net)
    ema_cfg = cfg.get("callbacks", {}).get("ema")
    params = [p for p in net.parameters() if p.requires_grad]
    ema = [p.detach().clone() for p in params] if ema_cfg else []
    sampler = DistributedSampler(
        datamodule.train_set, num_replicas=1, rank=0, shuffle=True, seed=cfg.data.seed
    )
    batch = cfg.data.batch_size
    losses, updates = [], 0
    torch.manual_seed(DROPOUT_SEED)
    net.train()
    for epoch in range(cfg.trainer.max_epochs):
        if epoch == 1:
            start = Times.now()
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler))
        total = torch.zeros(())
        for i in range(0, len(order), batch):
            index = order[i : i + batch]
            x, y = features[index], labels[index]
            l1, l2 = penalty(weights)
            loss = F.cross_entropy(net(x), y) + l1 + l2
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if ema:
                decay = min(ema_cfg.decay, 1 - (1 + updates) ** (-2 / 3)) if ema_cfg.warmup else ema_cfg.decay
                with torch.no_grad():
                    torch._foreach_lerp_(ema, params, 1.0 - decay)
                updates += 1
            loss = loss.detach()
            losses.append(loss)
            total += loss * len(index)
        if scheduler is not None:
            scheduler.step(float(total / len(order)))
    return torch.stack(losses), Times.now() - start


def measure(name: str, overrides: list[str], repeats: int) -> None:
    with tempfile.TemporaryDirectory() as out:
        cfg = compose_cfg(overrides, out)
        datamodule = instantiate(cfg.data)
        datamodule.setup("fit")
        epochs = cfg.trainer.max_epochs
        samples = len(datamodule.train_set) * (epochs - 1)
        best: dict[str, dict[str, float]] = {"bare": {}, "template": {}}
        for _ in range(repeats):  # alternate, so drifting machine load hits both alike
            for loop, run in (("bare", bare_loop), ("template", template_loop)):
                losses, seconds = run(cfg)
                for clock in Times._fields:
                    best[loop][clock] = min(best[loop].get(clock, float("inf")), getattr(seconds, clock))
                if loop == "bare":
                    bare_losses = losses
                else:
                    template_losses = losses
    steps = len(bare_losses) // epochs * (epochs - 1)
    diff = (template_losses - bare_losses).abs().max().item()
    same = len(template_losses) == len(bare_losses) and diff < 1e-5
    print(f"{name}: {len(bare_losses)} steps, losses equal to 5 decimals: {same} (max diff {diff:.1e})")
    for clock in Times._fields:
        bare, template = best["bare"][clock], best["template"][clock]
        print(
            f"  {clock:<4}  bare {samples / bare:>9,.0f} samples/s ({bare / steps * 1e6:7.0f} us/step)"
            f"   template {samples / template:>9,.0f} samples/s ({template / steps * 1e6:7.0f} us/step)"
            f"   ratio {bare / template:.3f}   overhead {(template - bare) / steps * 1e6:6.0f} us/step",
            flush=True,
        )
    if not same:
        sys.exit(f"{name}: the two loops do not compute the same losses")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run; the first is not timed")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each loop; the fastest counts")
    parser.add_argument("--throughput-samples", type=int, default=20000, help="synthetic data set size")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("overrides", nargs="*", help="extra config overrides for both configurations")
    args = parser.parse_args()
    common = [f"trainer.max_epochs={args.epochs}", "trainer.accelerator=cpu", *args.overrides]
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, lightning {L.__version__}, {torch.get_num_threads()} threads")
    measure("default experiment (digits MLP)", common, args.repeats)
    measure(
        "synthetic_throughput (MLP 4 x 1024)",
        ["+experiment=synthetic_throughput", f"data.num_samples={args.throughput_samples}", *common],
        args.repeats,
    )


if __name__ == "__main__":
    main()
