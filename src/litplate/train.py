"""Fit a model, then test its best checkpoint: ``python train.py [+experiment=NAME] [key=value ...]``."""

from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from litplate.callbacks.run_config import RunConfigInCheckpoint
from litplate.cli import CONFIG_DIR, config_errors_in_one_line, run
from litplate.config_checks import check_config
from litplate.config_tree import print_and_save
from litplate.faults import faults_in_one_line
from litplate.instantiate import instantiate_dict
from litplate.launch import relaunch_this_job_only, separate_process_group
from litplate.resume import check_resume_checkpoint, resolve_ckpt_path
from litplate.run_metadata import save_run_metadata

relaunch_this_job_only()  # DDP children under `-m` run their own job, not the sweep again


def train(cfg: DictConfig) -> dict[str, float]:
    """Everything after config composition; returns the final metrics (tests call this directly)."""
    resolve_ckpt_path(cfg)
    check_config(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    torch.set_float32_matmul_precision(cfg.get("matmul_precision", "highest"))
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    if cfg.train and cfg.ckpt_path:
        check_resume_checkpoint(model, cfg.ckpt_path)
    callbacks = instantiate_dict(cfg.get("callbacks")) + [RunConfigInCheckpoint(cfg)]
    loggers = instantiate_dict(cfg.get("logger"))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    if trainer.is_global_zero:
        print_and_save(cfg, Path(cfg.paths.output_dir) / "config_tree.log")
        save_run_metadata(cfg, cfg.paths.output_dir)
    hparams = OmegaConf.to_container(cfg, resolve=True)
    for logger in loggers:
        logger.log_hyperparams(hparams)

    if cfg.train:
        with faults_in_one_line(trainer):
            trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path, weights_only=True)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if cfg.test:
        with faults_in_one_line(trainer):
            trainer.test(
                model, datamodule=datamodule, ckpt_path=checkpoint_to_test(trainer, cfg), weights_only=True
            )
        metrics |= {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    return metrics


def checkpoint_to_test(trainer: L.Trainer, cfg: DictConfig) -> str | None:
    """After fitting, the best checkpoint by ``best.metric``; without fitting, ``ckpt_path``.

    Looked up by monitor, not ``trainer.checkpoint_callback`` (the first ModelCheckpoint, which
    may be the every-epoch ``last`` one when the best one is switched off).
    """
    if not cfg.train:
        path = cfg.ckpt_path
    else:
        monitored = [c for c in trainer.checkpoint_callbacks if c.monitor == cfg.best.metric]
        path = next((c.best_model_path for c in monitored if c.best_model_path), None)
    if path is None:
        print("No checkpoint to test: testing the weights in memory.")
    return path


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@config_errors_in_one_line
def hydra_main(cfg: DictConfig) -> float | None:
    with separate_process_group():
        metrics = train(cfg)
    return metrics.get(cfg.get("optimized_metric"))


def main() -> None:
    run(hydra_main)


if __name__ == "__main__":
    main()
