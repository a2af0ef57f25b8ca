"""Seconds from ``python train.py`` to the end of the first optimizer step, and where they go.

    python scripts/bench/bench_startup.py [--repeats 3] [overrides ...]

Runs the real entry point as a subprocess (default config, one training step, no testing) with a
callback that reports the moment the first step ends; the parent's clock starts before it spawns
the interpreter. Also times ``import litplate.train`` alone, the part a user pays even for ``--help``.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L

ROOT = Path(__file__).resolve().parents[2]
MARK = "first-step-done-at="


class FirstStep(L.Callback):
    """Prints the wall-clock time when the first optimizer step has finished."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == 1:
            print(f"{MARK}{time.time()}", flush=True)


def first_step_seconds(overrides: list[str], out: str) -> float:
    command = [
        sys.executable, str(ROOT / "train.py"), "trainer.max_steps=1", "test=false",
        "trainer.accelerator=cpu", f"paths.log_dir={out}",
        "+callbacks.first_step._target_=bench_startup.FirstStep", *overrides,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    start = time.time()
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=out)
    marks = [line for line in result.stdout.splitlines() if line.startswith(MARK)]
    if result.returncode or not marks:
        sys.exit(f"train.py failed:\n{result.stderr[-2000:]}")
    return float(marks[0][len(MARK) :]) - start


def import_seconds(module: str) -> float:
    code = f"import time; t = time.time(); import {module}; print(time.time() - t)"
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs; the fastest counts (the first warms caches)"
    )
    parser.add_argument("overrides", nargs="*", help="config overrides for train.py")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        first = min(first_step_seconds(args.overrides, out) for _ in range(args.repeats))
    floor = min(import_seconds("lightning") for _ in range(args.repeats))
    ours = min(import_seconds("litplate.train") for _ in range(args.repeats))
    python = min(_bare_python() for _ in range(args.repeats))
    print(f"python train.py -> first optimizer step done: {first:.2f} s (best of {args.repeats})")
    print(f"  `import lightning` alone (the floor):             {floor:.2f} s")
    print(f"  above the floor:                                 {first - floor:.2f} s")
    print(f"  `import litplate.train` (before composing):      {ours:.2f} s")
    print(f"  bare interpreter start:                          {python:.2f} s")


def _bare_python() -> float:
    start = time.time()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.time() - start


if __name__ == "__main__":
    main()
