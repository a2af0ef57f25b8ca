"""Stores the run's resolved config inside every checkpoint."""

from typing import Any

import lightning as L
from omegaconf import DictConfig, OmegaConf


class RunConfigInCheckpoint(L.Callback):
    """Puts the resolved config under ``checkpoint["config"]``.

    ``eval.py`` and ``predict.py`` rebuild the model and the data split from it, so a checkpoint
    evaluates on the split it was trained against even when copied away from its run directory.
    Plain containers only: the checkpoint still loads with ``weights_only=True``.
    """

    def __init__(self, cfg: DictConfig) -> None:
        self.config = OmegaConf.to_container(cfg, resolve=True)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["config"] = self.config
