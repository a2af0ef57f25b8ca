"""Fit a model, then test its best checkpoint: ``python train.py [+experiment=NAME] [key=value ...]``."""

from pathlib import Path

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from litplate.callbacks.run_config import RunConfigInCheckpoint
from litplate.cli import CONFIG_DIR, config_errors_in_one_line, run
from litplate.config_checks import check_config
from litplate.config_tree import print_and_save
from litplate.instantiate import instantiate_dict
from litplate.run_stamp import run_stamp

OmegaConf.register_new_resolver("run_stamp", run_stamp, replace=True)


def train(cfg: DictConfig) -> dict[str, float]:
    """Everything after config composition; returns the final metrics (tests call this directly)."""
    check_config(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    callbacks = instantiate_dict(cfg.get("callbacks")) + [RunConfigInCheckpoint(cfg)]
    loggers = instantiate_dict(cfg.get("logger"))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    if trainer.is_global_zero:
        print_and_save(cfg, Path(cfg.paths.output_dir) / "config_tree.log")
    hparams = OmegaConf.to_container(cfg, resolve=True)
    for logger in loggers:
        logger.log_hyperparams(hparams)

    if cfg.train:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path, weights_only=True)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if cfg.test:
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not best:
            print("No best checkpoint: testing the weights in memory.")
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        metrics |= {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@config_errors_in_one_line
def hydra_main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    return metrics.get(cfg.get("optimized_metric"))


def main() -> None:
    run(hydra_main)


if __name__ == "__main__":
    main()
