"""One PNG of a run's training curves, read back from its TensorBoard event files.

    python scripts/plot_run.py RUN_DIR [--out FILE]

Four panels against the epoch: the learning rate (the plateau scheduler's cuts show as steps), the
epoch-mean training objective (what the scheduler watches), the validation loss and the validation
accuracy of the live weights next to the EMA weights. Written to RUN_DIR/curves.png by default.
"""

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed, none opened
import matplotlib.pyplot as plt  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

# Panel title -> (tag, legend label) pairs; a tag the run did not log is left out of its panel.
PANELS = {
    "learning rate": [("lr-*", None)],
    "training objective (epoch mean)": [("train/loss_epoch", "train/loss_epoch")],
    "validation loss": [("val/loss", "live"), ("val/loss_ema", "EMA")],
    "validation accuracy": [("val/acc", "live"), ("val/acc_ema", "EMA")],
}


def event_dir(run_dir: Path) -> Path:
    found = sorted({p.parent for p in run_dir.rglob("events.out.tfevents.*")})
    if not found:
        raise FileNotFoundError(f"{run_dir}: no TensorBoard event files under it")
    if len(found) > 1:
        raise FileNotFoundError(
            f"{run_dir}: several TensorBoard runs under it ({', '.join(map(str, found))})"
        )
    return found[0]


def read_scalars(run_dir: Path) -> dict[str, list[float]]:
    """Every scalar tag as one value per logged step, in step order.

    A resumed run appends to the same file and may log a step twice; the later value wins.
    Epoch-level tags are logged once per epoch, so list position = epoch.
    """
    events = EventAccumulator(str(event_dir(run_dir)), size_guidance={"scalars": 0})
    events.Reload()
    series = {}
    for tag in events.Tags()["scalars"]:
        by_step = {e.step: e.value for e in events.Scalars(tag)}
        series[tag] = [by_step[s] for s in sorted(by_step)]
    return series


def _matching(series: dict[str, list[float]], pattern: str) -> list[str]:
    if pattern.endswith("*"):
        return sorted(t for t in series if t.startswith(pattern[:-1]))
    return [pattern] if pattern in series else []


def figure(series: dict[str, list[float]], title: str) -> plt.Figure:
    fig, axes = plt.subplots(2, 2, figsize=(9, 6), sharex=True)
    for ax, (name, curves) in zip(axes.flat, PANELS.items(), strict=True):
        for pattern, label in curves:
            for tag in _matching(series, pattern):
                values = series[tag]
                ax.plot(range(len(values)), values, marker=".", label=label or tag)
        if name == "learning rate" and ax.lines:
            ax.set_yscale("log")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        if len(ax.lines) > 1 or name == "learning rate":
            ax.legend()
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a train.py run directory (holds tensorboard/)")
    parser.add_argument("--out", type=Path, help="PNG to write (default: RUN_DIR/curves.png)")
    args = parser.parse_args(argv)
    try:
        series = read_scalars(args.run_dir)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = args.out or args.run_dir / "curves.png"
    fig = figure(series, title=args.run_dir.resolve().name)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
