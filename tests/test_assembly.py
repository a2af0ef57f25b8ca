"""build_trainer(): which of the configured callbacks the Trainer gets."""

from lightning.pytorch.callbacks import ModelCheckpoint

from litplate.runtime.assembly import build_trainer
from litplate.runtime.components import build_group


def checkpoint_files(cfg) -> list[str]:
    trainer = build_trainer(cfg.trainer, build_group(cfg.callbacks, "callbacks"), [])
    return sorted(c.filename for c in trainer.callbacks if isinstance(c, ModelCheckpoint))


def test_a_checkpoint_callback_that_never_saves_is_left_out(cfg_factory):
    # step_checkpoint is off by default (every_n_train_steps=0): Lightning would still call its
    # hooks on every step, for nothing.
    assert checkpoint_files(cfg_factory()) == ["epoch_{epoch:03d}", "last"]
    on = cfg_factory("callbacks.step_checkpoint.every_n_train_steps=5")
    assert checkpoint_files(on) == ["epoch_{epoch:03d}", "last", "step"]


def test_the_only_checkpoint_callback_stays_even_when_it_never_saves(cfg_factory):
    # Without any, Lightning would add a ModelCheckpoint of its own, which does save.
    cfg = cfg_factory("~callbacks.model_checkpoint", "~callbacks.last_checkpoint")
    assert checkpoint_files(cfg) == ["step"]
