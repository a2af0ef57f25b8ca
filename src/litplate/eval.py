"""Test a checkpoint: ``python eval.py ckpt_path=PATH``. Model and data split come from the checkpoint."""

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig

from litplate.checkpoints import rebuild_from_checkpoint
from litplate.cli import CONFIG_DIR, config_errors_in_one_line, run
from litplate.config_checks import check_rules
from litplate.instantiate import instantiate_dict


def evaluate(cfg: DictConfig) -> dict[str, float]:
    check_rules(cfg)
    model, datamodule, label = rebuild_from_checkpoint(cfg.ckpt_path, use_ema=cfg.use_ema)
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
