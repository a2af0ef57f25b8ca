"""Test a checkpoint: ``python eval.py [ckpt_path=PATH|last]``. Model and data split come from it."""

import lightning as L
from omegaconf import DictConfig

from litplate.runtime import app
from litplate.runtime.components import build_group
from litplate.runtime.quiet import silence_noise

KEYS = {
    "ckpt_path": (
        lambda v: isinstance(v, str),
        "null (the newest run's best), 'last' or a checkpoint file path",
    ),
    "use_ema": (app.is_bool, "true or false"),
}


def evaluate(cfg: DictConfig) -> dict[str, float]:
    silence_noise()
    app.check_keys(cfg, KEYS)
    app.run_dir(cfg)
    ckpt_path = app.checkpoint_for_evaluation(cfg.get("ckpt_path"), cfg.paths.log_dir)
    model, datamodule, label = app.rebuild(ckpt_path, use_ema=cfg.use_ema)
    trainer: L.Trainer = app.build_trainer(cfg.trainer, [], build_group(cfg.get("logger"), "logger"))
    print(f"Test metrics below are for the {label.upper()} weights of {ckpt_path}.")
    trainer.test(model, datamodule=datamodule)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


@app.hydra_entry("eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
