from litplate.data.diabetes import DiabetesDataModule
from litplate.data.digits import DigitsDataModule
from litplate.data.synthetic import SyntheticDataModule

__all__ = ["DiabetesDataModule", "DigitsDataModule", "SyntheticDataModule"]
