from litplate.models.classifier import Classifier
from litplate.models.regularization import WeightPenalty

__all__ = ["Classifier", "WeightPenalty"]
