"""ModelCheckpoint that keeps the run's best checkpoints when a resumed run writes to another directory."""

import os
import shutil
from pathlib import Path
from typing import Any

import lightning as L

from litplate.runtime.callbacks.model_checkpoint import ModelCheckpoint


class BestCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, plus: a resume into a new ``dirpath`` continues the run's top-k.

    When the checkpoint's ``dirpath`` differs from this one, Lightning reloads only
    ``best_model_path`` and forgets the scores (Lightning PR 12045, so that it never deletes another
    run's files: issue 11379). The next epoch, however bad, then becomes the best, and the final
    test evaluates it. Here the best checkpoints so far are copied into this run's directory and the
    bookkeeping follows the copies: the scores carry on, a better epoch replaces a copy as it would
    any of this run's files, and nothing outside this directory is read more than once or touched.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._to_copy: list[tuple[Path, Path]] = []

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old_dir = state_dict.get("dirpath")
        if old_dir is None or self.dirpath is None or Path(old_dir) == Path(self.dirpath):
            super().load_state_dict(state_dict)
            return
        here = Path(self.dirpath)
        kept = {Path(p): s for p, s in state_dict.get("best_k_models", {}).items() if Path(p).is_file()}
        self._to_copy = [(p, here / p.name) for p in kept]

        def moved(path: str | None) -> str:
            return str(here / Path(path).name) if path and Path(path) in kept else ""

        super().load_state_dict(
            {
                **state_dict,
                "dirpath": self.dirpath,
                "best_k_models": {str(here / p.name): s for p, s in kept.items()},
                "best_model_path": moved(state_dict.get("best_model_path")),
                "best_model_score": state_dict.get("best_model_score") if kept else None,
                "kth_best_model_path": moved(state_dict.get("kth_best_model_path")),
                "kth_value": state_dict.get("kth_value") if kept else self.kth_value,
                "last_model_path": "",
            }
        )

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._to_copy and trainer.is_global_zero:
            for source, target in self._to_copy:
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    partial = target.with_name(target.name + ".partial")
                    shutil.copyfile(source, partial)
                    os.replace(partial, target)  # a copy is complete or absent
        if self._to_copy:
            trainer.strategy.barrier("best_checkpoint_copies")
        self._to_copy = []
