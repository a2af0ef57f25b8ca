"""Lightning's messages that tell a user nothing about their run, filtered out of every run's output.

Plain logging filters and warning filters (public APIs): the product tips Lightning prints on
every run, its note that it sizes the train loader, a torch deprecation warning raised inside
Lightning's own code, a missing-monitor warning for epochs without validation (the names are
checked before training instead: ``assembly.check_metric_names``), and the advice to pass
``sync_dist=True`` for values torchmetrics has already reduced over the ranks. Everything else
Lightning says stays, printed once.
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
    """Called once torch and Lightning are imported, inside the Hydra task."""
    # Imported after Hydra has set up logging, Lightning's loggers would print every line twice:
    # through the console handler ``lightning/__init__.py`` puts on "lightning" ("INFO: ..."), and
    # through Hydra's root handlers. One plain line each, as when Lightning is imported first.
    lightning = logging.getLogger("lightning")
    lightning.propagate = False
    for handler in lightning.handlers:
        handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise())
    # lightning/pytorch/utilities/_pytree.py builds LeafSpec(), which torch 2.13 deprecates.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r".*could not find the monitored key in the returned metrics.*")
    # torchdata 0.11's StatefulDataLoader calls torch.set_vital, deprecated in torch 2.13, per iterator.
    warnings.filterwarnings("ignore", message=r".*'set_vital' is deprecated.*")
    warnings.filterwarnings("ignore", message=r".*It is recommended to use `self.log\(.*sync_dist=True\)`.*")
    warnings.filterwarnings(
        "ignore", message=r".*isinstance\(treespec, LeafSpec\).*", category=DeprecationWarning
    )
