"""Predict with a checkpoint: ``python predict.py [ckpt_path=PATH|last]`` -> ``<run dir>/predictions.csv``.

One row per sample of the checkpoint's own test (or validation) split, in split order: its index,
its target(s), and the columns the model's ``predictions()`` gives (a classifier: the predicted
class and the probability of every class; a regressor: the predicted value). The model and the split
are rebuilt from the run config stored in the checkpoint, as eval.py does. EMA weights by default.
"""

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from litplate.runtime import app
from litplate.runtime.trusted_targets import user_configs

if TYPE_CHECKING:
    from torch import Tensor

KEYS = {**app.EVALUATION_KEYS, "split": (lambda v: v in ("test", "val"), "one of test, val")}


def columns(name: str, values: "Tensor") -> dict[str, list]:
    """One column per tensor of one value per row; ``name_0..name_k`` for k values per row."""
    values = values.cpu()
    if values.ndim == 1:
        return {name: values.tolist()}
    return {f"{name}_{i}": column.tolist() for i, column in enumerate(values.reshape(len(values), -1).T)}


def write_csv(path: Path, table: dict[str, list]) -> None:
    """Written to a temporary name and renamed: an interrupted run leaves no half-written file."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", *table])
        for i, row in enumerate(zip(*table.values(), strict=True)):
            writer.writerow([i, *(f"{v:.6g}" if isinstance(v, float) else v for v in row)])
    os.replace(partial, path)


def predict(cfg: DictConfig) -> Path:
    """Write the predictions; torch and Lightning load here, after composition."""
    app.check_keys(cfg, KEYS)
    with user_configs():  # the checkpoint's own config builds inside checkpoint_configs()
        from litplate.runtime.heavy_imports import import_torch_and_lightning

        import_torch_and_lightning()
        import torch

        from litplate.runtime import assembly, checkpointing
        from litplate.runtime.quiet import silence_noise

        silence_noise()
        output_dir = app.run_dir(cfg)
        ckpt_path = checkpointing.checkpoint_for_evaluation(cfg.get("ckpt_path"), cfg.paths.log_dir)
        model, datamodule, label = assembly.rebuild(
            ckpt_path, use_ema=cfg.use_ema, trusted=cfg.get("trusted_targets") or ()
        )
        datamodule.setup("predict")
        loader = getattr(datamodule, f"{cfg.split}_dataloader")()

        trainer = assembly.build_trainer(cfg.trainer, [], [])
        outputs = torch.cat(trainer.predict(model, dataloaders=loader)).float()
        targets = torch.cat([y for _, y in loader])  # any (x, y) loader, not only in-memory datasets
        table = columns("target", targets)
        for name, values in model.predictions(outputs).items():
            table |= columns(name, values)
        path = output_dir / cfg.output_file
        path.parent.mkdir(parents=True, exist_ok=True)
        write_csv(path, table)
        print(f"{len(outputs)} {cfg.split} predictions of the {label.upper()} weights -> {path}")
        return path


@app.hydra_entry("predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
