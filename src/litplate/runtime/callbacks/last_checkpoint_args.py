"""LastCheckpoint's arguments: ModelCheckpoint's (``model_checkpoint_args.py``)."""

from litplate.runtime.arguments import Arguments
from litplate.runtime.callbacks import model_checkpoint_args

LastCheckpoint = Arguments(model_checkpoint_args.ModelCheckpoint)
