"""Write scikit-learn's bundled digits as PNG files in class-per-folder layout, to try the image datamodule.

    python scripts/make_image_folder.py data/digits_png
    python scripts/make_image_folder.py /tmp/small --classes 3 --per-class 30 --size 16

writes ``PATH/<digit>/<digit>_<n>.png``: 8-bit grey images, the 8x8 digits scaled up to ``--size``
pixels (bilinear), 1,797 in all (about 180 per digit), no download. ``+experiment=image_folder``
trains on ``data/digits_png``.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def write_digits(path: Path, classes: int = 10, per_class: int | None = None, size: int = 28) -> int:
    """Write the PNGs under ``path`` and return how many; existing files of the same names are replaced."""
    from sklearn.datasets import load_digits  # imported here: scikit-learn is slow to import

    digits = load_digits()
    counts = dict.fromkeys(range(classes), 0)
    for image, label in zip(digits.images, digits.target, strict=True):
        label = int(label)
        if label not in counts or (per_class is not None and counts[label] >= per_class):
            continue
        pixels = Image.fromarray(np.round(image * (255 / 16)).astype(np.uint8), mode="L")
        folder = path / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        pixels.resize((size, size), Image.Resampling.BILINEAR).save(
            folder / f"{label}_{counts[label]:04d}.png"
        )
        counts[label] += 1
    return sum(counts.values())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="folder to write (created)")
    parser.add_argument("--classes", type=int, default=10, help="digits 0..N-1 (default 10)")
    parser.add_argument("--per-class", type=int, default=None, help="at most this many images per digit")
    parser.add_argument("--size", type=int, default=28, help="width and height in pixels (default 28)")
    args = parser.parse_args(argv)
    if not 1 <= args.classes <= 10 or args.size < 1 or (args.per_class is not None and args.per_class < 1):
        sys.exit("error: use 1 <= --classes <= 10, --size >= 1 and --per-class >= 1")
    n = write_digits(args.path, args.classes, args.per_class, args.size)
    print(f"wrote {n:,} PNGs of {args.size}x{args.size} in {args.classes} class folders under {args.path}")


if __name__ == "__main__":
    main()
