"""What the template costs per training step, against plain Lightning and a bare PyTorch loop, in one run.

    python scripts/bench/bench_overhead.py [--epochs 4] [--repeats 3] [--profile]
        [--accelerator cpu|gpu] [--precision 32-true|bf16-mixed] [--compile] [--clock wall|cpu]
        [--same-optimizer]

Three loops do the same math on the same batches from the same initial weights, with the same
dropout masks: cross-entropy + L1 + L2, the configured optimizer, an EMA of the weights after every
step, and ReduceLROnPlateau stepped on the epoch-mean objective. The references build the optimizer
as a plain user writes it (``torch.optim.AdamW(params, lr=..., weight_decay=...)``: torch's default
implementation), the template from its config (``fused=True``): the same update, computed by other
kernels. ``--same-optimizer`` gives the references the template's config, leaving framework cost alone.

- bare: a hand-written PyTorch loop over the datamodule's tensors.
- plain Lightning: the smallest LightningModule doing that math, on the same DataLoader, and a
  Trainer with no callbacks, no logger, no progress bar, no checkpointing.
- template: ``train.py``'s own objects from the default config, everything on: metrics, EMA and its
  validation, epoch means, logging every ``log_every_n_steps`` to TensorBoard, the rich progress
  bar, checkpoints, every default callback.

Timed: each training step of every epoch after the first (warm-up), from the end of the one before
(or the epoch's start) to its own end, hooks included; the epoch's last step runs to its last hook,
minus validation, which only the template runs. ``--repeats`` runs of each loop, alternating, so
that drifting load on a shared machine hits all three alike; each step counts with its fastest of
the runs (a step another job slowed down in one run counts as it ran in another; on a GPU, where
the host runs ahead of the device, the fastest whole run counts instead), and the fastest whole run
is printed too. ``--clock cpu`` counts this process's CPU time instead of wall time: on a
shared machine, not the time other jobs take the cores away. Per-step losses of the three must agree
to 5 decimals. ``--profile`` adds a per-hook breakdown of the template's steps against plain
Lightning's (Lightning's SimpleProfiler, one extra run each).
"""

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from lightning.pytorch.profilers import SimpleProfiler
from omegaconf import DictConfig, OmegaConf, open_dict
from torch.utils.data import DistributedSampler

from litplate.runtime.app import CONFIG_DIR, plain_config
from litplate.runtime.assembly import build_model, build_trainer
from litplate.runtime.checkpointing import RunConfigInCheckpoint
from litplate.runtime.components import build_group
from litplate.runtime.quiet import silence_noise
from litplate.runtime.regularization import WeightPenalty

DROPOUT_SEED = 1234
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
now = CLOCKS["wall"]  # --clock: process CPU time counts every thread of this process (the progress
# bar's, the logger's) but not the time other jobs of a shared machine take the cores away
MODELS = {
    "digits MLP (default)": [],
    "digits CNN": ["+experiment=digits_cnn"],
    "MLP 4 x 1024, synthetic": ["+experiment=synthetic_throughput"],
}


def compose_cfg(overrides: list[str], output_dir: str) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR):
        cfg = compose("train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = output_dir
    return cfg


class Clock(L.Callback):
    """Seconds of each training step in the epochs after the first, validation excluded, and each
    step's loss (kept as tensors: no sync). A step's interval runs from the previous one's end (or
    the epoch's start) to its own ``on_train_batch_end``; the hooks after this one's, and after the
    epoch's last step, count in the next interval and the last, so the intervals tile the epoch.
    Listed first, so its epoch-end hook runs before any other callback's epoch-end work."""

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []
        self.step_seconds: list[float] = []
        self._last = self._val = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        torch.manual_seed(DROPOUT_SEED)
        # The whole validation run, not only on_validation_start..end: Lightning's setup and teardown
        # around those hooks (dataloader checks, model.eval(), zero_grad, model.train()) is
        # validation's cost too, and only the template validates. This loop object only: timing.
        loop = trainer.fit_loop.epoch_loop.val_loop
        run = loop.run

        def timed_run(*args: Any, **kwargs: Any) -> Any:
            start = now()
            try:
                return run(*args, **kwargs)
            finally:
                self._val += now() - start

        loop.run = timed_run

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last, self._val = now(), 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(outputs["loss"] if isinstance(outputs, dict) else outputs)
        if trainer.current_epoch > 0:
            self._lap(new_step=True)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch > 0:
            self._lap(new_step=False)

    def _lap(self, new_step: bool) -> None:
        t = now()
        seconds, self._last, self._val = t - self._last - self._val, t, 0.0
        if new_step:
            self.step_seconds.append(seconds)
        else:
            self.step_seconds[-1] += seconds


class PlainModule(L.LightningModule):
    """The math of the bare loop as a minimal LightningModule: no metrics, no self.log."""

    def __init__(self, net, optimizer: Callable, scheduler: Callable | None, penalty, ema) -> None:
        super().__init__()
        self.net, self.make_optimizer, self.make_scheduler = net, optimizer, scheduler
        self.penalty, self.weights = penalty, WeightPenalty.weights(net)
        self.ema_decay = ema
        self.params = [p for p in net.parameters() if p.requires_grad]
        self.ema: list[torch.Tensor] = []
        self.updates = 0
        self.total, self.samples = 0, 0

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        l1, l2 = self.penalty(self.weights)
        loss = F.cross_entropy(self.net(x), y) + l1 + l2
        self.total = self.total + loss.detach() * len(y)
        self.samples += len(y)
        return loss

    def on_train_start(self) -> None:
        self.ema = [p.detach().clone() for p in self.params] if self.ema_decay else []  # on the device now

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.ema:
            with torch.no_grad():
                torch._foreach_lerp_(self.ema, self.params, 1.0 - self.ema_decay(self.updates))
            self.updates += 1

    def on_train_epoch_end(self) -> None:
        if self.scheduler is not None:
            self.scheduler.step(float(self.total / self.samples))
        self.total, self.samples = 0, 0

    def configure_optimizers(self):
        optimizer = self.make_optimizer(self.parameters())
        self.scheduler = self.make_scheduler(optimizer) if self.make_scheduler else None
        return optimizer


# How the references build the optimizer: "plain" is the call a plain PyTorch or Lightning user
# writes, the template's class and hyperparameters without the implementation flags the template
# sets (torch then picks its default implementation); "same" is the template's config as it is.
REFERENCE_OPTIMIZER = "plain"
IMPLEMENTATION_FLAGS = ("fused", "foreach", "capturable")


def reference_optimizer(cfg: DictConfig, params: Any) -> torch.optim.Optimizer:
    spec = OmegaConf.to_container(cfg.model.optimizer, resolve=True)
    if REFERENCE_OPTIMIZER == "plain":
        spec = {k: v for k, v in spec.items() if k not in IMPLEMENTATION_FLAGS}
    return instantiate(spec, params=params)


def _parts(cfg: DictConfig):
    """Data, a fresh net (the same initial weights as the template's), and the math's settings."""
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    shapes = {"input_shape": list(datamodule.input_shape), "num_outputs": datamodule.num_outputs}
    net = instantiate(cfg.model.net, **shapes)  # the same draws as inside TaskModule.__init__
    ema_cfg = cfg.callbacks.ema

    def decay(updates: int) -> float:
        return min(ema_cfg.decay, 1 - (1 + updates) ** (-2 / 3)) if ema_cfg.warmup else ema_cfg.decay

    return datamodule, net, WeightPenalty(**cfg.model.regularization), decay


def bare_loop(cfg: DictConfig) -> tuple[torch.Tensor, list[float]]:
    """What one would write by hand: index the tensors, step, average, no framework. On a GPU each
    batch is copied over as Lightning copies the template's; bf16 is autocast around the forward."""
    datamodule, net, penalty, decay = _parts(cfg)
    device = torch.device("cuda" if cfg.trainer.accelerator == "gpu" else "cpu")
    net.to(device)
    if cfg.model.compile:
        net.forward = torch.compile(net.forward)
    bf16 = cfg.trainer.precision == "bf16-mixed"
    features, labels = datamodule.train_set.features, datamodule.train_set.targets
    optimizer = reference_optimizer(cfg, net.parameters())
    scheduler = instantiate(cfg.model.scheduler, optimizer=optimizer) if cfg.model.scheduler else None
    weights, params = WeightPenalty.weights(net), [p for p in net.parameters() if p.requires_grad]
    ema = [p.detach().clone() for p in params]
    sampler = DistributedSampler(
        datamodule.train_set, num_replicas=1, rank=0, shuffle=True, seed=cfg.data.seed
    )
    batch = cfg.data.batch_size
    losses, updates, step_seconds = [], 0, []
    torch.manual_seed(DROPOUT_SEED)
    net.train()
    for epoch in range(cfg.trainer.max_epochs):
        last = now()
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler))
        total = torch.zeros((), device=device)
        for i in range(0, len(order), batch):
            index = order[i : i + batch]
            x, y = features[index].to(device), labels[index].to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                l1, l2 = penalty(weights)
                loss = F.cross_entropy(net(x), y) + l1 + l2
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                torch._foreach_lerp_(ema, params, 1.0 - decay(updates))
            updates += 1
            loss = loss.detach()
            losses.append(loss)
            total += loss * len(index)
            if epoch > 0:
                t = now()
                step_seconds.append(t - last)
                last = t
        if scheduler is not None:
            scheduler.step(float(total / len(order)))
    return torch.stack(losses), step_seconds


def plain_lightning(cfg: DictConfig, profiler: Any = None) -> tuple[torch.Tensor, list[float]]:
    datamodule, net, penalty, decay = _parts(cfg)
    if cfg.model.compile:
        net.forward = torch.compile(net.forward)
    module = PlainModule(
        net,
        lambda params: reference_optimizer(cfg, params),
        (lambda opt: instantiate(cfg.model.scheduler, optimizer=opt)) if cfg.model.scheduler else None,
        penalty,
        decay,
    )
    clock = Clock()
    trainer = L.Trainer(
        accelerator=cfg.trainer.accelerator, precision=cfg.trainer.precision, devices=1,
        max_epochs=cfg.trainer.max_epochs, callbacks=[clock], logger=False,
        enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
        num_sanity_val_steps=0, limit_val_batches=0, profiler=profiler, default_root_dir=cfg.paths.output_dir,
    )  # fmt: skip
    trainer.fit(module, train_dataloaders=datamodule.train_dataloader())
    return torch.stack(clock.losses), clock.step_seconds


def template(cfg: DictConfig, profiler: Any = None) -> tuple[torch.Tensor, list[float]]:
    """train.py's objects, built the way train() builds them, plus the clock (first) and a profiler."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    model = build_model(cfg.model, datamodule)
    clock = Clock()
    callbacks = [clock, *build_group(cfg.callbacks, "callbacks"), RunConfigInCheckpoint(plain_config(cfg))]
    trainer_cfg = cfg.trainer.copy()
    with open_dict(trainer_cfg):
        trainer_cfg.enable_model_summary = False
    trainer = build_trainer(trainer_cfg, callbacks, build_group(cfg.logger, "logger"))
    if profiler is not None:
        trainer.profiler = profiler
    trainer.fit(model, datamodule=datamodule)
    return torch.stack(clock.losses), clock.step_seconds


def peak_memory(run: Callable) -> Callable:
    """``run``, also returning the peak GPU memory it allocated (0 on the CPU)."""

    def measured(cfg: DictConfig, **kwargs: Any) -> tuple[torch.Tensor, list[float], int]:
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        losses, seconds = run(cfg, **kwargs)
        return losses, seconds, torch.cuda.max_memory_allocated() if cuda else 0

    return measured


LOOPS = {"bare": bare_loop, "plain Lightning": plain_lightning, "template": template}


def per_hook(profiler: SimpleProfiler, steps: int) -> dict[str, float]:
    """Microseconds per training step spent in each profiled action called at least once a step
    (module hooks under one name, whatever the module's class): the median call times the calls
    per step, so that a call another job interrupted does not count."""
    costs: dict[str, float] = {}
    for action, durations in profiler.recorded_durations.items():
        if len(durations) >= steps and "validation" not in action and "val_" not in action:
            name = re.sub(r"^\[LightningModule\]\w+\.", "[LightningModule]", action)
            name = re.sub(
                r"^\[Callback\]ModelCheckpoint\{'monitor': ([^,]+),.*\}",
                r"[Callback]ModelCheckpoint(\1)",
                name,
            )
            costs[name] = costs.get(name, 0.0) + statistics.median(durations) * len(durations) / steps * 1e6
    return costs


def step_kind(index: int, per_epoch: int, log_every: int) -> str:
    """Which kind of step the ``index``-th timed one is (the first epoch is not timed). A logged
    step's writing happens after its own ``on_train_batch_end``, so it falls in the next interval."""
    batch, step = index % per_epoch, index + per_epoch
    if batch == 0:
        return "epoch's first (after the last epoch's end)"
    if batch == per_epoch - 1:
        return "epoch's last"
    if log_every and ((step + 1) % log_every == 0 or step % log_every == 0):
        return "logged, or the one after"
    return "other"


def print_step_kinds(runs: dict[str, list[list[float]]], per_epoch: int, log_every: int) -> None:
    """Where the template's time per step differs from plain Lightning's, by kind of step: each
    kind's steps (fastest of the repeats) and their share of the difference per step."""
    best = {loop: list(map(min, zip(*r, strict=True))) for loop, r in runs.items()}
    steps = len(best["template"])
    kinds: dict[str, list[int]] = {}
    other = float("nan")
    for i in range(steps):
        kinds.setdefault(step_kind(i, per_epoch, log_every), []).append(i)
    print("  by kind of step, us: steps  bare  plain L  template  (template - plain L) per step of all")
    for kind, indices in kinds.items():
        mean = {loop: sum(best[loop][i] for i in indices) / len(indices) * 1e6 for loop in best}
        share = (mean["template"] - mean["plain Lightning"]) * len(indices) / steps
        print(
            f"    {kind:44s} {len(indices):4d} {mean['bare']:7.0f} {mean['plain Lightning']:7.0f}"
            f" {mean['template']:7.0f}  {share:+7.0f}"
        )
        if kind == "other":
            other = mean["plain Lightning"] / mean["template"]
    print(f"  template / plain Lightning on the other steps: {other:.3f}")


def measure(name: str, overrides: list[str], epochs: int, repeats: int, profile: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        cfg = compose_cfg([f"trainer.max_epochs={epochs}", *overrides], out)
        runs: dict[str, list[list[float]]] = {loop: [] for loop in LOOPS}
        losses, memory = {}, {}
        for _ in range(repeats):
            for loop, run in LOOPS.items():
                losses[loop], seconds, memory[loop] = peak_memory(run)(cfg)
                runs[loop].append(seconds)
        # Each step's fastest of the repeats, summed: a step that another job slowed down in one
        # run counts as it ran in another. The fastest whole run is printed next to it. On a GPU
        # the host runs ahead of the device, so a step's host time is not its cost: whole runs only.
        best_run = {loop: min(map(sum, r)) for loop, r in runs.items()}
        best = {loop: sum(map(min, zip(*r, strict=True))) for loop, r in runs.items()}
        if cfg.trainer.accelerator != "cpu":
            best = best_run
        steps = len(losses["bare"]) // epochs * (epochs - 1)
        n = len(losses["bare"])
        diffs = {k: (v - losses["bare"]).abs().max().item() for k, v in losses.items() if len(v) == n}
        same_kernels = REFERENCE_OPTIMIZER == "same" or not (
            set(cfg.model.optimizer) & set(IMPLEMENTATION_FLAGS)
        )
        exact = (
            cfg.trainer.accelerator == "cpu"
            and cfg.trainer.precision == "32-true"
            and not cfg.model.compile
            and same_kernels
        )
        # GPU kernels, bf16, compiled graphs and another optimizer implementation round differently,
        # and over a hundred steps of a wide net the differences grow
        tolerance = 1e-5 if exact else 5e-2
        same = len(diffs) == 3 and max(diffs.values()) < tolerance
        setting = f"{cfg.trainer.accelerator}, {cfg.trainer.precision}" + (
            ", compiled" if cfg.model.compile else ""
        )
        print(f"\n{name} ({setting}): {steps} timed steps, batch {cfg.data.batch_size}")
        print(
            f"  losses of the three agree within {tolerance:g}: {same} (max diff {max(diffs.values()):.1e})"
        )
        print("  us/step  " + "   ".join(f"{loop} {best[loop] / steps * 1e6:8.0f}" for loop in LOOPS))
        print(
            "  us/step, fastest whole run  "
            + "   ".join(f"{loop} {best_run[loop] / steps * 1e6:8.0f}" for loop in LOOPS)
        )
        print(
            "  samples/s "
            + "   ".join(f"{loop} {steps * cfg.data.batch_size / best[loop]:9,.0f}" for loop in LOOPS)
        )
        if any(memory.values()):
            print("  peak GPU memory MiB  " + "   ".join(f"{k} {v / 2**20:.1f}" for k, v in memory.items()))
        ratios = {
            "template / bare": best["bare"] / best["template"],
            "template / plain Lightning": best["plain Lightning"] / best["template"],
            "plain Lightning / bare": best["bare"] / best["plain Lightning"],
        }
        print("  speed    " + "   ".join(f"{k} {v:.3f}" for k, v in ratios.items()))
        if cfg.trainer.accelerator == "cpu":
            print_step_kinds(runs, len(losses["bare"]) // epochs, cfg.trainer.log_every_n_steps)
        if profile:
            hooks = {}
            for loop in ("plain Lightning", "template"):
                profiler = SimpleProfiler(dirpath=out, filename=f"profile_{loop.split()[0]}")
                LOOPS[loop](cfg, profiler=profiler)
                hooks[loop] = per_hook(profiler, n)
            print("  per-step hooks, us/step (SimpleProfiler, median call): template, plain Lightning, hook")
            for action, cost in sorted(hooks["template"].items(), key=lambda kv: -kv[1])[:18]:
                print(f"    {cost:8.1f}  {hooks['plain Lightning'].get(action, 0.0):8.1f}   {action}")
        if not same:
            sys.exit(f"{name}: the loops do not compute the same losses: {diffs}")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run; the first is not timed")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each loop; the fastest counts")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--throughput-samples", type=int, default=20000, help="synthetic data set size")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--clock", default="wall", choices=list(CLOCKS), help="wall time, or this process's CPU time"
    )
    parser.add_argument("--profile", action="store_true", help="per-hook breakdown (one more run each)")
    parser.add_argument(
        "--same-optimizer",
        action="store_true",
        help="the references use the template's optimizer config as it is (fused AdamW by default), "
        "not the plain constructor call: framework overhead alone",
    )
    parser.add_argument("--accelerator", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the net in all three loops")
    parser.add_argument(
        "overrides", nargs="*", help="config overrides for all three, e.g. trainer.log_every_n_steps=50"
    )
    args = parser.parse_args()
    global now, REFERENCE_OPTIMIZER
    now = CLOCKS[args.clock]
    REFERENCE_OPTIMIZER = "same" if args.same_optimizer else "plain"
    silence_noise()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = (
        torch.cuda.get_device_name()
        if args.accelerator == "gpu"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"torch {torch.__version__}, lightning {L.__version__}, {device}, {args.clock} clock")
    print(f"references' optimizer: {REFERENCE_OPTIMIZER} (--same-optimizer: the template's config as it is)")
    setting = [f"trainer.accelerator={args.accelerator}", f"trainer.precision={args.precision}"]
    setting += ["model.compile=true"] if args.compile else []
    for name in args.models:
        extra = [f"data.num_samples={args.throughput_samples}"] if "synthetic" in name else []
        measure(
            name, [*MODELS[name], *setting, *extra, *args.overrides], args.epochs, args.repeats, args.profile
        )


if __name__ == "__main__":
    main()
