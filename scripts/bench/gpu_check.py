"""On a GPU: no host-device sync on the training steps the loggers do not write.

    python scripts/bench/gpu_check.py [--epochs 2] [overrides ...]

Trains the default config on ``cuda`` with ``torch.cuda.set_sync_debug_mode("warn")`` switched on
for exactly the training steps that are not logged (every step but each ``log_every_n_steps``-th),
and counts the synchronizing operations CUDA reports on them. The CPU counterpart, which counts the
Python-side reads instead, is ``tests/test_host_sync.py``. Prints the device, the steps checked,
and every synchronizing operation found on an unlogged step, with where it came from; exits 1 if
there is one. Throughput and memory on the GPU: ``bench_overhead.py --accelerator gpu``.
"""

import argparse
import sys
import tempfile
import traceback
import warnings
from collections import defaultdict

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from litplate.runtime.app import CONFIG_DIR
from litplate.train import train


class SyncWatch(L.Callback):
    """Sync debug mode "warn" on unlogged training steps, "default" elsewhere; warnings per step."""

    made: list["SyncWatch"] = []

    def __init__(self) -> None:
        SyncWatch.made.append(self)
        self.step: int | None = None
        self.found: dict[int, list[str]] = defaultdict(list)
        self.checked: set[int] = set()

    def _watch(self, step: int | None) -> None:
        self.step = step
        torch.cuda.set_sync_debug_mode("warn" if step is not None else "default")

    def on_train_batch_start(self, trainer: L.Trainer, *args) -> None:
        step = trainer.global_step
        logged = (step + 1) % trainer.log_every_n_steps == 0
        self._watch(None if logged else step)
        if not logged:
            self.checked.add(step)

    def on_train_epoch_end(self, *args) -> None:
        self._watch(None)

    def on_validation_start(self, *args) -> None:
        self._watch(None)

    def record(self, message: str) -> None:
        if self.step is not None:
            frames = [f for f in traceback.extract_stack()[:-2] if "warnings" not in f.filename]
            self.found[self.step].append(
                f"{message.splitlines()[0][:90]} at {frames[-1].filename}:{frames[-1].lineno}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. trainer.precision=bf16-mixed")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this check needs a GPU")
    sys.modules.setdefault("gpu_check", sys.modules["__main__"])  # Hydra's gpu_check.SyncWatch is this one
    GlobalHydra.instance().clear()
    overrides = [
        f"trainer.max_epochs={args.epochs}",
        "trainer.accelerator=gpu",
        "test=false",
        *args.overrides,
    ]
    overrides.append("+callbacks.sync_watch._target_=gpu_check.SyncWatch")
    with initialize_config_dir(config_dir=CONFIG_DIR):
        cfg = compose("train", overrides=overrides)
    with tempfile.TemporaryDirectory() as out:
        with open_dict(cfg):
            cfg.paths.output_dir = out
        original = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if "synchroniz" in str(message) and SyncWatch.made:
                SyncWatch.made[-1].record(str(message))
            else:
                original(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = show
            train(cfg)
    watch = SyncWatch.made[-1]
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, lightning {L.__version__}")
    print(f"overrides: {' '.join(args.overrides) or '(default config)'}")
    print(f"unlogged training steps checked: {len(watch.checked)}; with a sync: {len(watch.found)}")
    for step, found in sorted(watch.found.items())[:5]:
        print(f"  step {step}: " + "; ".join(found[:4]))
    sys.exit(1 if watch.found else 0)


if __name__ == "__main__":
    main()
