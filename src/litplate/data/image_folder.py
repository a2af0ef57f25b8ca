"""Images in class-per-folder layout (``root/<class name>/<image>``), as torchvision's ImageFolder reads.

Classes are the folder names, sorted (that order is the label index). Every image is decoded,
resized, augmented (training split only) and normalized in the DataLoader workers; the machinery
(finding files, the saved split, one-line errors, statistics) is in ``litplate.runtime.image_folder``.
To change what happens to an image, change ``ResizeAndAugment``.
"""

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from litplate.data import image_folder_args
from litplate.runtime.image_folder import ClassFolderDataModule, Transform


class ResizeAndAugment:
    """Resize to ``(height, width)``, to a float tensor in [0, 1]; with a generator (training split
    only) a random horizontal flip and a random crop of the image padded by ``crop_padding`` pixels
    of black on each side (a shift by up to that many pixels).

    All randomness comes from the generator, which the dataset seeds per sample and epoch: the same
    run gives the same augmented batches whatever the number of workers.
    """

    def __init__(self, size: tuple[int, int], flip: bool, crop_padding: int) -> None:
        self.height, self.width = size
        self.flip, self.crop_padding = flip, crop_padding

    def __call__(self, image: Image.Image, generator: torch.Generator | None) -> Tensor:
        if image.size != (self.width, self.height):
            image = image.resize((self.width, self.height), Image.Resampling.BILINEAR)
        x = torch.from_numpy(np.array(image)).view(self.height, self.width, -1).permute(2, 0, 1)
        x = x.float().div_(255)
        if generator is None:
            return x
        if self.flip and torch.rand((), generator=generator) < 0.5:
            x = x.flip(-1)
        if self.crop_padding:
            pad = self.crop_padding
            top, left = torch.randint(0, 2 * pad + 1, (2,), generator=generator).tolist()
            x = F.pad(x, (pad, pad, pad, pad))[:, top : top + self.height, left : left + self.width]
        return x


class ImageFolderDataModule(ClassFolderDataModule):
    """``image_size``: one number (square) or ``[height, width]``; ``channels``: 1 (grey) or 3 (RGB).

    The rest (``root``, ``split_file``, ``mean``/``std``, ``verify``, batch sizes, fractions, seed,
    workers) is explained in ``ClassFolderDataModule`` and ``SplitDataModule``.
    """

    @image_folder_args.ImageFolderDataModule.check
    def __init__(
        self, image_size: int | Sequence[int] = 28, flip: bool = True, crop_padding: int = 2, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.image_size = (image_size[0], image_size[-1])  # checked: [size] or [height, width]
        self.flip = flip
        self.crop_padding = crop_padding

    def transform(self) -> Transform:
        return ResizeAndAugment(self.image_size, self.flip, self.crop_padding)
