"""Predict with a checkpoint: ``python predict.py ckpt_path=PATH`` writes ``<run dir>/predictions.csv``.

One row per sample of the checkpoint's own test (or validation) split, in split order: its index,
the true label, the predicted class and the probability of every class. The model and the split are
rebuilt from the run config stored in the checkpoint, as eval.py does, so the file lines up with the
split the model was evaluated on. EMA weights by default, as eval.py and the test after training use.
"""

import csv
import os
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import Tensor

from litplate.checkpoints import rebuild_from_checkpoint
from litplate.cli import CONFIG_DIR, config_errors_in_one_line, run
from litplate.config_checks import check_rules


def write_csv(path: Path, labels: Tensor, probabilities: Tensor) -> None:
    """Written to a temporary name and renamed: an interrupted run leaves no half-written file."""
    classes = probabilities.shape[1]
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "label", "prediction", *(f"prob_{c}" for c in range(classes))])
        rows = zip(labels.tolist(), probabilities.argmax(1).tolist(), probabilities.tolist(), strict=True)
        for i, (label, predicted, probs) in enumerate(rows):
            writer.writerow([i, label, predicted, *(f"{p:.6f}" for p in probs)])
    os.replace(partial, path)


def predict(cfg: DictConfig) -> Path:
    check_rules(cfg)
    model, datamodule, label = rebuild_from_checkpoint(cfg.ckpt_path, use_ema=cfg.use_ema)
    datamodule.setup("predict")
    loader = getattr(datamodule, f"{cfg.split}_dataloader")()

    trainer: L.Trainer = instantiate(cfg.trainer, logger=False)
    probabilities = torch.cat(trainer.predict(model, dataloaders=loader)).float().cpu()
    labels = torch.cat([y for _, y in loader]).cpu()  # any (x, y) loader, not only in-memory datasets
    path = Path(cfg.paths.output_dir) / cfg.output_file
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(path, labels, probabilities)
    accuracy = (probabilities.argmax(1) == labels).float().mean().item()
    print(f"{len(probabilities)} {cfg.split} predictions of the {label.upper()} weights -> {path}")
    print(f"accuracy {accuracy:.4f}")
    return path


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
@config_errors_in_one_line
def hydra_main(cfg: DictConfig) -> None:
    predict(cfg)


def main() -> None:
    run(hydra_main)


if __name__ == "__main__":
    main()
