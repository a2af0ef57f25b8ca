from litplate.models.classifier import Classifier
from litplate.models.regressor import Regressor

__all__ = ["Classifier", "Regressor"]
