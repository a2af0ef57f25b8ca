from litplate.data.array_datamodule import ArrayDataModule
from litplate.data.digits import DigitsDataModule
from litplate.data.synthetic import SyntheticDataModule

__all__ = ["ArrayDataModule", "DigitsDataModule", "SyntheticDataModule"]
