"""Fit a model, then test its best checkpoint: ``python train.py [+experiment=NAME] [key=value ...]``."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from litplate.runtime import app, arguments, trainer_args
from litplate.runtime.trusted_targets import user_configs

# train.yaml's own keys; every component checks its own arguments when it is built.
KEYS = {
    "seed": (app.is_int, "an integer"),
    "train": (app.is_bool, "true or false"),
    "test": (app.is_bool, "true or false"),
    "ckpt_path": (lambda v: isinstance(v, str), "null, 'last' or a checkpoint file path"),
    "matmul_precision": (lambda v: v in ("highest", "high", "medium"), "one of highest, high, medium"),
    "best.mode": (lambda v: v in ("min", "max"), "'min' or 'max'"),
}


def train(cfg: DictConfig, callbacks: Sequence[Any] = ()) -> dict[str, float]:
    """Everything after config composition; returns the final metrics.

    ``callbacks`` join the configured ones: what a caller needs in this run only (``tune.py``'s
    pruning callback, which holds its Optuna trial).

    Works on a config from the command line, or from Hydra's compose API in Python or a notebook
    (with or without ``return_hydra_config=True``). torch and Lightning are imported here, not at
    the top: a mistyped key or option, a bad value of one of train.yaml's own keys, or one that a
    component's declared arguments refuse (``runtime/arguments.py``) is reported before they load
    (~3 s).
    """
    app.check_keys(cfg, KEYS)
    arguments.check_config(cfg)
    arguments.check_node(cfg.trainer, trainer_args.Trainer, "trainer")
    with user_configs():
        return fit_and_test(cfg, callbacks)


def fit_and_test(cfg: DictConfig, callbacks: Sequence[Any]) -> dict[str, float]:
    from litplate.runtime.heavy_imports import import_torch_and_lightning

    import_torch_and_lightning()
    import lightning as L
    import torch

    from litplate.runtime import assembly, checkpointing, slurm
    from litplate.runtime.callbacks.trackers import runs_finished, trackers_of
    from litplate.runtime.components import build, build_group
    from litplate.runtime.config_tree import print_and_save
    from litplate.runtime.errors import faults_in_one_line
    from litplate.runtime.quiet import silence_noise
    from litplate.runtime.run_metadata import save_run_metadata
    from litplate.runtime.upstream.lightning_ddp_multirun import children_run_this_job_only

    silence_noise()
    output_dir = app.run_dir(cfg)
    checkpoint_dir = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath") or output_dir / "checkpoints"
    ckpt_path = checkpointing.resume_path(cfg.ckpt_path, Path(checkpoint_dir))
    if ckpt_path is None and cfg.train:  # a requeued SLURM job goes on from where it was stopped
        ckpt_path = slurm.checkpoint_after_requeue(Path(checkpoint_dir))
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    torch.set_float32_matmul_precision(cfg.matmul_precision)

    datamodule = build(cfg.data, "data")
    model = assembly.build_model(cfg.model, datamodule)
    if ckpt_path:  # not a checkpoint, or another model's: one line now, not a traceback mid-restore
        checkpointing.check_weights_fit(model, checkpointing.load_checkpoint(ckpt_path)["state_dict"])
    config = app.plain_config(cfg)
    callbacks = [
        *build_group(cfg.get("callbacks"), "callbacks"),
        checkpointing.RunConfigInCheckpoint(config),
        *callbacks,
    ]
    loggers = build_group(cfg.get("logger"), "logger")
    callbacks += trackers_of(loggers, config, cfg.best.metric)  # MLflow, W&B: config file, best checkpoint
    assembly.check_metric_names(model, callbacks, cfg, sweep=app.in_sweep())
    trainer: L.Trainer = assembly.build_trainer(cfg.trainer, callbacks, loggers)
    assembly.check_batches(trainer, datamodule, splits=("train", "val", "test") if cfg.train else ("test",))

    if trainer.is_global_zero:
        print_and_save(config, output_dir / "config_tree.log")
        save_run_metadata(config, output_dir)
    for logger in loggers:
        logger.log_hyperparams(config)

    with children_run_this_job_only(), runs_finished(loggers):
        if cfg.train:
            with faults_in_one_line(trainer):
                trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        if cfg.test:
            tested = checkpoint_to_test(trainer, cfg.best.metric, ckpt_path, cfg.train)
            with faults_in_one_line(trainer):
                trainer.test(model, datamodule=datamodule, ckpt_path=tested, weights_only=True)
            metrics |= {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    return metrics


def checkpoint_to_test(trainer: Any, best_metric: str, ckpt_path: str | None, fitted: bool) -> str | None:
    """After fitting, the best checkpoint by ``best.metric``; without fitting, ``ckpt_path``."""
    from litplate.runtime.checkpointing import best_checkpoint

    path = best_checkpoint(trainer, best_metric) if fitted else ckpt_path
    if path is None:
        print("No checkpoint to test: testing the weights in memory.")
    return path


@app.hydra_entry("train", resumes=True)
def main(cfg: DictConfig) -> float | None:
    from litplate.runtime.distributed import separate_process_group

    with separate_process_group():
        metrics = train(cfg)
    return metrics.get(cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
