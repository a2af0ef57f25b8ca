"""The datamodules; each is imported on first use (``runtime/lazy_exports.py``)."""

from litplate.runtime.lazy_exports import lazy_exports

_HOMES = {
    "DiabetesDataModule": "diabetes",
    "DigitsDataModule": "digits",
    "ImageFolderDataModule": "image_folder",
    "SyntheticDataModule": "synthetic",
}
__all__ = list(_HOMES)
__getattr__ = lazy_exports(__name__, _HOMES)
