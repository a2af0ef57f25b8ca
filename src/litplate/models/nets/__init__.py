from litplate.models.nets.cnn import CNN
from litplate.models.nets.mlp import MLP

__all__ = ["CNN", "MLP"]
