"""Test a checkpoint: ``python eval.py ckpt_path=PATH``. Model and data split come from the checkpoint."""

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from litplate.checkpoints import load_checkpoint, load_weights, weights_from
from litplate.cli import CONFIG_DIR, config_errors_in_one_line, run
from litplate.config_checks import ConfigError, check_rules
from litplate.instantiate import instantiate_dict
from litplate.run_stamp import run_stamp

OmegaConf.register_new_resolver("run_stamp", run_stamp, use_cache=True, replace=True)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    check_rules(cfg)
    checkpoint = load_checkpoint(cfg.ckpt_path)
    if "config" not in checkpoint:
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path!r} has no run config: was it written by litplate's train.py?"
        )
    run_cfg = OmegaConf.create(checkpoint["config"])
    L.seed_everything(run_cfg.seed, verbose=False)
    model = instantiate(run_cfg.model)
    weights, label = weights_from(checkpoint, ema=cfg.get("use_ema", True))
    load_weights(model, weights)
    datamodule = instantiate(run_cfg.data)
    trainer: L.Trainer = instantiate(cfg.trainer, logger=instantiate_dict(cfg.get("logger")) or False)
    print(f"Test metrics below are for the {label.upper()} weights of {cfg.ckpt_path}.")
    trainer.test(model, datamodule=datamodule)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
@config_errors_in_one_line
def hydra_main(cfg: DictConfig) -> None:
    evaluate(cfg)


def main() -> None:
    run(hydra_main)


if __name__ == "__main__":
    main()
