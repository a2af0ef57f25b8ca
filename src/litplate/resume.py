"""Which checkpoint a run resumes from, and whether it fits the model, checked before training."""

from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from torch import nn

from litplate.checkpoints import check_weights_fit, load_checkpoint
from litplate.config_checks import ConfigError


def checkpoint_dir(cfg: DictConfig) -> Path:
    dirpath = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath", default=None)
    return Path(dirpath or Path(cfg.paths.output_dir) / "checkpoints")


def resolve_ckpt_path(cfg: DictConfig) -> None:
    """``ckpt_path=last``: the newest ``*.ckpt`` in this run's checkpoint directory.

    Lightning's own ``"last"`` silently trains from scratch when it finds nothing; here that is an
    error. The run directory is new for every run, so point Hydra at the old one:
    ``python train.py hydra.run.dir=logs/train/runs/STAMP ckpt_path=last``.
    """
    if cfg.get("ckpt_path") != "last":
        return
    directory = checkpoint_dir(cfg)
    found = sorted(directory.glob("*.ckpt"), key=lambda p: (p.stat().st_mtime_ns, p.name == "last.ckpt"))
    if not found:
        raise ConfigError(
            f"ckpt_path='last': no checkpoint in {directory} "
            "(to resume a run, set hydra.run.dir to that run's directory)"
        )
    cfg.ckpt_path = str(found[-1])


def check_resume_checkpoint(model: nn.Module, path: str) -> None:
    """Not a checkpoint, or one from another model: one line now, instead of a traceback mid-restore."""
    check_weights_fit(model, load_checkpoint(path)["state_dict"])
