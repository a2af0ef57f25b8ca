"""Seconds from the command to the first optimizer step, and to an error, next to ``import lightning``.

    python scripts/bench/bench_startup.py [--repeats 5] [--no-errors] [overrides ...]

Every time is a fresh interpreter's, from just before the parent spawns it, best of ``--repeats``:

- the floor: ``python -c "import lightning"`` until the import is done, the least a Lightning
  run can cost; and until that interpreter has exited (tearing down torch takes a while);
- the same import with the garbage collector off, as ``runtime/heavy_imports.py`` imports (about
  1 s less): first step minus this one is the template's own cost;
- ``python train.py`` (default config, one training step, no testing) to the end of its first
  optimizer step, reported by a callback added from the command line;
- ``python train.py`` with a mistake, to its exit (when the user has the prompt back): a value a
  component refuses (one per kind of component: net, model, data, callback), a Trainer value of
  ours and one Lightning refuses, a mistyped key (Hydra composition) and a bad value of
  train.yaml's own keys.

The runs alternate (one of each per round), so a machine that gets busier or quieter mid-run moves
them all alike; the first step is also given minus each floor within a round (median and range).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L

ROOT = Path(__file__).resolve().parents[2]
MARK = "first-step-done-at="
FLOOR = "python -c 'import lightning', import done (the floor)"
FLOOR_NO_GC = "the same import with the garbage collector off"
FIRST_STEP = "python train.py -> first optimizer step done"

# label -> overrides that make train.py exit with one error line.
MISTAKES = {
    "net value (model.net.dropout=1.5)": ["model.net.dropout=1.5"],
    "model value (model.regularization.l2=-1)": ["model.regularization.l2=-1"],
    "data value (data.batch_size=0)": ["data.batch_size=0"],
    "callback value (callbacks.ema.decay=1)": ["callbacks.ema.decay=1"],
    "Trainer value of ours (trainer.accumulate_grad_batches=0)": ["trainer.accumulate_grad_batches=0"],
    "Lightning's name, checked early (trainer.accelerator=gpus)": ["trainer.accelerator=gpus"],
    "Lightning's device check (trainer.accelerator=cuda, no GPU)": ["trainer.accelerator=cuda"],
    "Lightning's name, checked early (trainer.precision=17)": ["trainer.precision=17"],
    "Lightning's rule, checked early (trainer.devices=0)": ["trainer.devices=0"],
    "mistyped key (trainer.max_epcohs=3)": ["trainer.max_epcohs=3"],
    "entry key value (seed=abc)": ["seed=abc"],
}


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
    path = [str(Path(__file__).parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    start = time.time()
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=out)
    marks = [line for line in result.stdout.splitlines() if line.startswith(MARK)]
    if result.returncode or not marks:
        sys.exit(f"train.py failed:\n{result.stderr[-2000:]}")
    return float(marks[0][len(MARK) :]) - start


def error_seconds(overrides: list[str], out: str) -> float:
    """Seconds until ``train.py OVERRIDES`` has exited with its one error line (exit status 2)."""
    command = [sys.executable, str(ROOT / "train.py"), *overrides, f"hydra.run.dir={out}/refused"]
    start = time.time()
    result = subprocess.run(command, capture_output=True, text=True, cwd=out)
    seconds = time.time() - start
    if result.returncode != 2 or not result.stderr.strip().splitlines()[-1].startswith("error: "):
        sys.exit(f"train.py {' '.join(overrides)} did not fail in one line:\n{result.stderr[-2000:]}")
    return seconds


def command_seconds(code: str) -> float:
    start = time.time()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.time() - start


def import_seconds(module: str, gc_off: bool = False) -> float:
    """Seconds from the command until ``import MODULE`` is done (the interpreter's exit not counted)."""
    start = time.time()
    code = f"import gc, time; {'gc.disable(); ' if gc_off else ''}import {module}; print(time.time())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout) - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="rounds; the fastest of each counts")
    parser.add_argument("--no-errors", action="store_true", help="only the floor and the first step")
    parser.add_argument("overrides", nargs="*", help="config overrides for the first-step run")
    args = parser.parse_args()
    mistakes = {} if args.no_errors else MISTAKES
    timings: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.repeats):
            runs = {
                FLOOR: lambda: import_seconds("lightning"),
                FLOOR_NO_GC: lambda: import_seconds("lightning", gc_off=True),
                "python -c 'import lightning', to its exit": lambda: command_seconds("import lightning"),
                FIRST_STEP: lambda: first_step_seconds(args.overrides, out),
                **{label: (lambda o=o: error_seconds(o, out)) for label, o in mistakes.items()},
                "bare interpreter start": lambda: command_seconds("pass"),
            }
            for label, run in runs.items():
                timings.setdefault(label, []).append(run())
    best = {label: min(seconds) for label, seconds in timings.items()}
    floor = best[FLOOR]
    print(f"best of {args.repeats}, seconds from the command; last column: minus the floor")
    for label, seconds in best.items():
        print(f"  {label:<60} {seconds:6.2f}   {seconds - floor:+6.2f}")
    # Each round runs them back to back, so a difference within a round moves less with the load.
    for floor_label, name in ((FLOOR, "the floor"), (FLOOR_NO_GC, "the import with the collector off")):
        paired = sorted(a - b for a, b in zip(timings[FIRST_STEP], timings[floor_label], strict=True))
        print(f"first step minus {name}, within each round: median {statistics.median(paired):+.2f}, "
              f"range {paired[0]:+.2f} to {paired[-1]:+.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
