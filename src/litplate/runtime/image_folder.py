"""Images in the class-per-folder layout (``root/<class name>/<image>``), loaded by DataLoader workers.

The machinery behind ``litplate.data.image_folder``: finding the files, the split saved with the run,
decoding with one-line errors that name the file, per-sample augmentation seeds, and the training
split's per-channel statistics. A subclass of ``ClassFolderDataModule`` only says what to do to one
decoded image (``transform()``).
"""

import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset, DistributedSampler

from litplate.runtime import image_folder_args
from litplate.runtime.datamodule import SplitDataModule
from litplate.runtime.errors import DataFileError, first_line
from litplate.runtime.image_folder_args import MODES

# What Pillow decodes and people keep photos in; other files in a class folder (notes, .DS_Store) are skipped.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
SPLITS = ("train", "val", "test")

# What a subclass's transform is: a decoded image and, on the training split, the sample's own
# generator (None elsewhere: no augmentation) -> a float tensor (channels, height, width) in [0, 1].
Transform = Callable[[Image.Image, torch.Generator | None], Tensor]


# ---- files ---------------------------------------------------------------------------------------


def scan(root: Path) -> tuple[list[str], list[str]]:
    """The class names (sorted; their order is the label index) and every image as ``class/.../file``.

    Hidden folders and files are skipped; a class folder may have subfolders. A root without class
    folders, or a class folder without images, is a one-line error naming it.
    """
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise DataFileError(
            f"{root} holds no class folders: put each class's images in {root}/<class name>/", "root"
        )
    files: list[str] = []
    for name in classes:
        found = []
        for folder, subfolders, names in os.walk(root / name):
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
            relative = Path(folder).relative_to(root).as_posix()
            found += [
                f"{relative}/{n}"
                for n in sorted(names)
                if not n.startswith(".") and Path(n).suffix.lower() in IMAGE_SUFFIXES
            ]
        if not found:
            raise DataFileError(
                f"class folder {root / name} holds no images ({' '.join(IMAGE_SUFFIXES)}): "
                "add some or remove the folder",
                "root",
            )
        files += found
    return classes, files


def read_image(path: Path, mode: str) -> Image.Image:
    """The decoded image in ``mode``, or a ``DataFileError`` naming the file.

    ``convert`` reads the pixel data, so truncated or corrupt data fails here, not later.
    """
    try:
        with Image.open(path) as image:
            return image.convert(mode)
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError... for broken files
        reason = first_line(error).replace(f" '{path}'", "").replace(f" {path}", "")
        raise DataFileError(
            f"{path} is not a readable image ({reason}): replace or delete it", "root"
        ) from None


# ---- the split file ------------------------------------------------------------------------------


def read_split_file(path: Path, root: Path) -> tuple[list[str], dict[str, list[str]]]:
    """The classes and the files of each split stored in ``path``; every file must still be under root."""

    def refuse(why: str, fix: str = "") -> DataFileError:
        return DataFileError(f"{path} {why}: {fix}delete it to split {root} again", "split_file")

    try:
        stored = json.loads(path.read_text())
        classes = stored["classes"]
        splits = {name: stored[name] for name in SPLITS}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise refuse(f"is not a split file ({first_line(error)})") from None
    for name, files in splits.items():
        for file in files:
            if not isinstance(file, str) or file.split("/")[0] not in classes:
                raise refuse(f"lists {file!r} in {name}, which is in none of its classes")
            if not (root / file).is_file():
                raise refuse(f"lists {file} in {name}, but {root / file} does not exist", "restore it, or ")
    return classes, splits


def write_split_file(path: Path, content: dict[str, Any]) -> None:
    """Written to a temporary name and renamed: a crash never leaves half a split. Under DDP every
    rank computes the same split and writes the same bytes; each writes its own temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(content, indent=1) + "\n")
    os.replace(partial, path)


# ---- datasets and sampling -----------------------------------------------------------------------


def _mix64(x: int) -> int:
    """SplitMix64's finalizer: neighbouring inputs give unrelated 64-bit outputs."""
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A generator for one sample in one epoch, a function of (seed, epoch, index) only.

    So a sample's augmentation does not depend on which worker loads it, on how many there are, on
    whether they persist across epochs, or on a resume: the same run gives the same batches with 0,
    1 or 8 workers, and a resumed epoch sees the augmentations the uninterrupted one would have.
    """
    return torch.Generator().manual_seed(_mix64(_mix64(_mix64(seed) ^ epoch) ^ index))


class EpochTaggedSampler(DistributedSampler):
    """``DistributedSampler``'s order (so also ``ArrayDataModule``'s), each index paired with its epoch.

    Workers hold copies of the dataset made when they started (persistent ones for the whole run), so
    the epoch Lightning sets on the sampler in the main process can only reach them with the indices.
    """

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        return ((index, epoch) for index in super().__iter__())


class ImageFiles(Dataset):
    """Image files and their labels; ``__getitem__`` runs in the worker process that loads the sample.

    It decodes the file, applies the transform (with the sample's own generator when ``augment``)
    and normalizes with ``mean`` and ``std`` (per channel) when they are given.
    """

    def __init__(
        self,
        root: Path,
        files: Sequence[str],
        labels: Sequence[int],
        transform: Transform,
        mode: str,
        seed: int = 0,
        augment: bool = False,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        self.root, self.files, self.labels = root, list(files), list(labels)
        self.transform, self.mode, self.seed, self.augment = transform, mode, seed, augment
        self.mean = None if mean is None else torch.tensor(mean).view(-1, 1, 1)
        self.std = None if std is None else torch.tensor(std).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[Tensor, int]:
        index, epoch = (
            item if isinstance(item, tuple) else (item, 0)
        )  # (index, epoch) from EpochTaggedSampler
        image = read_image(self.root / self.files[index], self.mode)
        x = self.transform(image, sample_generator(self.seed, epoch, index) if self.augment else None)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x, self.labels[index]


class ChannelSums:
    """A transform's output reduced to per-channel sum, sum of squares and pixel count (a (3, C) tensor):
    the setup pass collects these instead of images."""

    def __init__(self, transform: Transform) -> None:
        self.transform = transform

    def __call__(self, image: Image.Image, generator: torch.Generator | None) -> Tensor:
        x = self.transform(image, None).double().flatten(1)
        return torch.stack([x.sum(1), (x * x).sum(1), torch.full((len(x),), float(x.shape[1]))])


# ---- the datamodule ------------------------------------------------------------------------------


class ClassFolderDataModule(SplitDataModule):
    """Base class for images in class-per-folder layout: subclasses implement ``transform()``.

    ``setup()`` finds the files (or reads the split file), splits them by ``seed`` with the fractions,
    then decodes every file once in the loader workers: a broken file stops the run before training,
    naming it, and the training split's per-channel mean and std come out of the same pass. Then it
    writes the split file, so a rerun or a resume in the same run directory reads the same split
    back, even if files were added since. ``mean``/``std`` given skip the statistics,
    ``verify: false`` the decoding of the validation and test files (both: no pass at all).
    ``num_outputs`` is the number of class folders, ``input_shape`` the shape the transform gives.
    """

    @image_folder_args.ClassFolderDataModule.check
    def __init__(
        self,
        root: str,
        split_file: str | None = None,
        channels: int = 3,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        verify: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()
        self.split_file = None if split_file is None else Path(split_file)
        self.channels = channels
        self.mean, self.std = mean, std  # lists of floats, or both None
        self.verify = verify
        self.classes: list[str] = []
        self.train_set: ImageFiles | None = None
        self.val_set: ImageFiles | None = None
        self.test_set: ImageFiles | None = None

    def transform(self) -> Transform:
        """What happens to one decoded image in a worker, as a picklable callable (see ``Transform``)."""
        raise NotImplementedError

    # ---- shapes ----------------------------------------------------------------------------------

    @property
    def input_shape(self) -> tuple[int, ...]:
        self.setup()
        return tuple(self.train_set[0][0].shape)  # what the transform makes of the first image

    @property
    def num_outputs(self) -> int:
        self.setup()
        return len(self.classes)

    # ---- setup -----------------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        stored = self.split_file is not None and self.split_file.is_file()
        if stored:
            self.classes, splits = read_split_file(self.split_file, self.root)
        else:
            self.classes, files = scan(self.root)
            splits = {
                name: [files[i] for i in indices.tolist()] for name, indices in self.split(len(files)).items()
            }
        if not splits["train"]:
            raise DataFileError(f"{self.root} has too few images to leave any for training", "root")
        mean, std = self.mean, self.std
        if mean is None or self.verify:
            mean, std = self._decode_all(splits, statistics=mean is None) or (mean, std)
        if self.split_file is not None and not stored:
            content = {"root": str(self.root.resolve()), "seed": self.seed, "classes": self.classes, **splits}
            write_split_file(self.split_file, content)
        label = {name: i for i, name in enumerate(self.classes)}

        def files(name: str, augment: bool = False) -> ImageFiles:
            labels = [label[f.split("/")[0]] for f in splits[name]]
            mode = MODES[self.channels]
            return ImageFiles(
                self.root, splits[name], labels, self.transform(), mode, self.seed, augment, mean, std
            )

        self.train_set, self.val_set, self.test_set = (
            files("train", augment=True),
            files("val"),
            files("test"),
        )
        where = (
            f"; split {'read from' if stored else 'saved to'} {self.split_file}" if self.split_file else ""
        )
        rank_zero_info(
            f"{self.root}: {len(self.classes)} classes, "
            + ", ".join(f"{len(splits[n]):,} {n}" for n in SPLITS)
            + f" images; per-channel mean {_rounded(mean)}, std {_rounded(std)}"
            + (" (training split)" if self.mean is None else " (given)")
            + where
        )

    def _decode_all(
        self, splits: dict[str, list[str]], statistics: bool
    ) -> tuple[list[float], list[float]] | None:
        """Decode the training files (and, with ``verify``, the others) once in the loader workers; with
        ``statistics``, the training split's per-channel mean and std (over all its pixels) too."""
        names = SPLITS if self.verify else ("train",)
        files = [f for name in names for f in splits[name]]
        is_train = [name == "train" for name in names for _ in splits[name]]
        dataset = ImageFiles(self.root, files, is_train, ChannelSums(self.transform()), MODES[self.channels])
        totals = torch.zeros(3, self.channels, dtype=torch.float64)
        for sums, train in self.make_loader(dataset, self.eval_batch_size, persistent=False):
            totals += sums[train].sum(0)
        if not statistics:
            return None
        mean = totals[0] / totals[2]
        std = (totals[1] / totals[2] - mean**2).clamp_min(0).sqrt().clamp_min(1e-6)
        return mean.tolist(), std.tolist()

    # ---- loaders ---------------------------------------------------------------------------------

    def train_sampler(self, dataset: Dataset) -> DistributedSampler:
        world_size, rank = self._world()
        return EpochTaggedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=self.seed)


def _rounded(values: Sequence[float] | None) -> str:
    return "none" if values is None else "[" + ", ".join(f"{v:.4f}" for v in values) + "]"
