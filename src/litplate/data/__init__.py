from litplate.data.diabetes import DiabetesDataModule
from litplate.data.digits import DigitsDataModule
from litplate.data.image_folder import ImageFolderDataModule
from litplate.data.synthetic import SyntheticDataModule

__all__ = ["DiabetesDataModule", "DigitsDataModule", "ImageFolderDataModule", "SyntheticDataModule"]
