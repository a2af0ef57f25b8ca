"""What reading images from files costs: one training epoch of the image-folder loader against the
same images decoded once into memory, and where the time of one sample goes.

    python scripts/bench/bench_image_loading.py [--repeats 3] [--root FOLDER]

1. Throughput, samples/s of iterating one epoch of ``ImageFolderDataModule.train_dataloader()`` (decode,
   resize, augment, normalize and collate in ``num_workers`` = 0, 1, 2 worker processes), and of the
   in-memory path on the same images: every training image decoded, resized and normalized once into
   one tensor, then ``ArrayDataModule``'s loader (``InMemoryDataset``, a batch per fancy index, no
   augmentation). Workers are persistent: the first epoch (worker start-up included) is reported on its
   own, the rest is the best of ``--repeats`` epochs.
2. Breakdown: every stage of one sample timed on its own in one process, over all training files
   (best of ``--repeats`` passes, microseconds per sample): file read, PNG decode, resize and
   conversion to a float tensor, augmentation (its generator included), normalization, and collate
   (a batch's ``default_collate`` divided by its size).

Without ``--root`` the digits are written as PNGs (``scripts/make_image_folder.py``) into a
temporary folder first.
"""

import argparse
import importlib.util
import io
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import default_collate

from litplate.data.image_folder import ImageFolderDataModule, ResizeAndAugment
from litplate.runtime.datamodule import ArrayDataModule
from litplate.runtime.image_folder import MODES, sample_generator

ROOT = Path(__file__).resolve().parents[2]


def write_digits(path: Path, size: int) -> None:
    spec = importlib.util.spec_from_file_location(
        "make_image_folder", ROOT / "scripts" / "make_image_folder.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.write_digits(path, size=size)


class DecodedOnce(ArrayDataModule):
    """The in-memory reference: the file datamodule's training images, decoded once, as tensors."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, **kwargs) -> None:
        super().__init__(val_fraction=0.0, test_fraction=0.0, **kwargs)
        self.images, self.labels = images, labels

    def load(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images, self.labels


def epoch_seconds(loader, epochs: int) -> tuple[float, float, int]:
    """(first epoch, best of the next ``epochs``, samples per epoch) of iterating ``loader``."""
    times, samples = [], 0
    for epoch in range(epochs + 1):
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        start, samples = time.perf_counter(), 0
        for x, _ in loader:
            samples += len(x)
        times.append(time.perf_counter() - start)
    return times[0], min(times[1:]), samples


def throughput(args: argparse.Namespace, root: Path) -> None:
    common = {"batch_size": args.batch_size, "seed": 0, "persistent_workers": True}
    files = {"root": str(root), "channels": 1, "image_size": args.image_size, **common}
    rows = []
    for workers in (0, 1, 2):
        dm = ImageFolderDataModule(**files, num_workers=workers)
        rows.append((f"files, num_workers={workers}", *epoch_seconds(dm.train_dataloader(), args.repeats)))
    dm.train_set.augment = False  # decode every training image once, as the file path would
    images = torch.stack([dm.train_set[i][0] for i in range(len(dm.train_set))])
    labels = torch.tensor(dm.train_set.labels)
    memory = DecodedOnce(images, labels, **common, num_workers=0)
    rows.append(("in memory (decoded once)", *epoch_seconds(memory.train_dataloader(), args.repeats)))

    n = rows[0][3]
    reference = n / rows[-1][2]
    png, size = f"{args.png_size}x{args.png_size}", f"{args.image_size}x{args.image_size}"
    print(f"\n{n:,} training images ({png} grey PNG -> {size}), batch {args.batch_size}, "
          f"best of {args.repeats} epochs after the first")  # fmt: skip
    print("| loader | first epoch s | epoch s (best) | samples/s | / in memory | / files, 0 workers |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, first, best, _ in rows:
        rate = n / best
        print(f"| {name} | {first:.3f} | {best:.3f} | {rate:,.0f} | {rate / reference:.3f} | "
              f"{rate / (n / rows[0][2]):.2f} |")  # fmt: skip


def best_of(repeats: int, stage) -> float:
    """Best total seconds of ``stage()`` over ``repeats`` calls, after one untimed call (first-call setup)."""
    stage()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        stage()
        best = min(best, time.perf_counter() - start)
    return best


def breakdown(args: argparse.Namespace, root: Path) -> None:
    dm = ImageFolderDataModule(root=str(root), channels=1, image_size=args.image_size, seed=0)
    dm.setup()
    train = dm.train_set
    paths = [train.root / f for f in train.files]
    n, mode, size = len(paths), MODES[1], (args.image_size, args.image_size)
    plain = ResizeAndAugment(size, flip=False, crop_padding=0)
    augment = ResizeAndAugment(size, flip=True, crop_padding=2)
    mean, std = train.mean, train.std

    data = [p.read_bytes() for p in paths]
    decoded = [Image.open(io.BytesIO(b)).convert(mode) for b in data]
    resized = [im.resize((size[1], size[0]), Image.Resampling.BILINEAR) for im in decoded]
    tensors = [plain(im, None) for im in decoded]
    normalized = [(x - mean) / std for x in tensors]
    samples = list(zip(normalized, train.labels, strict=True))
    batches = [samples[i : i + args.batch_size] for i in range(0, n, args.batch_size)]

    stages = {
        "file read": lambda: [p.read_bytes() for p in paths],
        "PNG decode": lambda: [Image.open(io.BytesIO(b)).convert(mode) for b in data],
        "resize + to float tensor": lambda: [plain(im, None) for im in decoded],
        "augment (flip, padded crop, generator)": lambda: [
            augment(im, sample_generator(0, 0, i)) for i, im in enumerate(resized)
        ],
        "normalize": lambda: [(x - mean) / std for x in tensors],
        "collate (default_collate / batch)": lambda: [default_collate(b) for b in batches],
    }
    # The augmentation runs on images already at the target size, so it does not resize again;
    # taking the no-augmentation transform of those off leaves the augmentation alone.
    no_resize_plain = best_of(args.repeats, lambda: [plain(im, None) for im in resized])
    print(f"\nPer-sample stages, one process, {n:,} training files, best of {args.repeats} passes")
    print("| stage | us/sample | share |")
    print("| --- | --- | --- |")
    times = {name: best_of(args.repeats, stage) for name, stage in stages.items()}
    times["augment (flip, padded crop, generator)"] -= no_resize_plain
    total = sum(times.values())
    for name, seconds in times.items():
        print(f"| {name} | {seconds / n * 1e6:.1f} | {seconds / total:.0%} |")
    print(f"| sum | {total / n * 1e6:.1f} | 100% |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", type=Path, help="a class-per-folder image set (default: the digits as PNGs)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--png-size", type=int, default=28, help="size of the PNGs written without --root")
    parser.add_argument("--image-size", type=int, default=32, help="the datamodule's image_size (resize)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if root is None:
            root = Path(tmp) / "digits"
            write_digits(root, args.png_size)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, images from {root}")
        throughput(args, root)
        breakdown(args, root)


if __name__ == "__main__":
    main()
