"""Lightning's messages that tell a user nothing about their run, filtered out of every run's output.

Plain logging filters and warning filters (public APIs): the product tips Lightning prints on
every run, its note that it sizes the train loader, and a torch deprecation warning raised inside
Lightning's own code that the user can do nothing about. Everything else Lightning says stays.
"""

import logging
import warnings

NOISE = (
    "💡 Tip:",  # advertisements for Lightning's cloud products, on every run
    "Loading `train_dataloader` to estimate number of stepping batches.",
)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(NOISE)


def silence_noise() -> None:
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise())
    # lightning/pytorch/utilities/_pytree.py builds LeafSpec(), which torch 2.13 deprecates.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*", category=FutureWarning)
    warnings.filterwarnings(
        "ignore", message=r".*isinstance\(treespec, LeafSpec\).*", category=DeprecationWarning
    )
