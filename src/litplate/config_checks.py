"""Checks on the composed config, run before anything is built.

Each rule names a key, the values it allows and a predicate. A violation raises ``ConfigError``
whose message is one line: the key, the value given, and what is allowed.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig, ListConfig, OmegaConf


class ConfigError(ValueError):
    """A configuration value a user can fix; printed as one line with no traceback."""


def _int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _fraction(x: Any) -> bool:
    return _num(x) and 0 <= x < 1


def _is_list(x: Any) -> bool:
    return isinstance(x, list | ListConfig)


def _sizes(x: Any) -> bool:
    """A layer width or a list of widths, each an integer >= 1."""
    return all(_int(v) and v >= 1 for v in (x if _is_list(x) else [x]))


def _limit(allow_zero: bool) -> Callable[[Any], bool]:
    """Lightning's limit_*_batches: a float is a fraction of the batches, an int a count."""
    low = 0 if allow_zero else 1
    return lambda v: (
        (isinstance(v, float) and (0 <= v <= 1 if allow_zero else 0 < v <= 1)) or (_int(v) and v >= low)
    )


PRECISIONS = {
    "64", "32", "16", "bf16", "64-true", "32-true", "16-true", "bf16-true", "16-mixed", "bf16-mixed",
    "transformer-engine", "transformer-engine-float16",
}  # fmt: skip
ACCELERATORS = {"auto", "cpu", "gpu", "cuda", "mps", "tpu", "hpu"}


@dataclass(frozen=True)
class Rule:
    key: str
    allowed: str
    ok: Callable[[Any], bool]


RULES = [
    Rule("seed", "an integer", _int),
    Rule("data.batch_size", "an integer >= 1", lambda v: _int(v) and v >= 1),
    Rule("data.eval_batch_size", "an integer >= 1", lambda v: _int(v) and v >= 1),
    Rule("data.num_workers", "an integer >= 0", lambda v: _int(v) and v >= 0),
    Rule("data.val_fraction", "a number in [0, 1)", _fraction),
    Rule("data.test_fraction", "a number in [0, 1)", _fraction),
    Rule("data.num_samples", "an integer >= 1", lambda v: _int(v) and v >= 1),
    Rule("data.label_noise", "a number in [0, 1)", _fraction),
    Rule("model.net.dropout", "a number in [0, 1)", _fraction),
    Rule("model.regularization.l1", "a number >= 0", lambda v: _num(v) and v >= 0),
    Rule("model.regularization.l2", "a number >= 0", lambda v: _num(v) and v >= 0),
    Rule("model.optimizer.lr", "a number > 0", lambda v: _num(v) and v > 0),
    Rule("model.optimizer.weight_decay", "a number >= 0", lambda v: _num(v) and v >= 0),
    Rule("model.compile", "true or false", lambda v: isinstance(v, bool)),
    Rule("matmul_precision", "one of highest, high, medium", lambda v: v in ("highest", "high", "medium")),
    Rule(
        "trainer.max_epochs", "an integer >= 1, or -1 for no limit", lambda v: _int(v) and (v >= 1 or v == -1)
    ),
    Rule("trainer.accumulate_grad_batches", "an integer >= 1", lambda v: _int(v) and v >= 1),
    Rule("trainer.num_nodes", "an integer >= 1", lambda v: _int(v) and v >= 1),
    Rule(
        "trainer.devices",
        "an integer >= 1, -1 (all), 'auto', or a list of device indices",
        lambda v: (
            (_int(v) and (v >= 1 or v == -1))
            or v == "auto"
            or isinstance(v, list | ListConfig)
            or (isinstance(v, str) and v.replace(",", "").isdigit())
        ),
    ),
    Rule("trainer.precision", "one of " + ", ".join(sorted(PRECISIONS)), lambda v: str(v) in PRECISIONS),
    Rule("trainer.accelerator", "one of " + ", ".join(sorted(ACCELERATORS)), lambda v: v in ACCELERATORS),
    Rule("split", "one of test, val", lambda v: v in ("test", "val")),  # predict.py
    Rule("best.mode", "'min' or 'max'", lambda v: v in ("min", "max")),
    Rule("callbacks.ema.decay", "a number in (0, 1)", lambda v: _num(v) and 0 < v < 1),
    Rule("callbacks.ema.warmup", "true or false", lambda v: isinstance(v, bool)),
    Rule("callbacks.ema.update_every_n_steps", "an integer >= 1", lambda v: _int(v) and v >= 1),
    Rule("callbacks.ema.start_step", "an integer >= 0", lambda v: _int(v) and v >= 0),
    Rule("callbacks.ema.buffers", "'average' or 'copy'", lambda v: v in ("average", "copy")),
    Rule("callbacks.ema.validate_ema", "true or false", lambda v: isinstance(v, bool)),
    Rule("callbacks.ema.test_ema", "true or false", lambda v: isinstance(v, bool)),
    Rule("callbacks.ema.sync_buffers", "true or false", lambda v: isinstance(v, bool)),
    Rule("use_ema", "true or false", lambda v: isinstance(v, bool)),
    # The rest of the keys users touch: types and ranges (unknown keys are Hydra's struct errors).
    Rule("train", "true or false", lambda v: isinstance(v, bool)),
    Rule("test", "true or false", lambda v: isinstance(v, bool)),
    Rule("ckpt_path", "null, 'last' or a checkpoint file path", lambda v: v is None or isinstance(v, str)),
    Rule("data.num_features", "an integer >= 1", lambda v: _int(v) and v >= 1),
    Rule("data.num_classes", "an integer >= 2", lambda v: _int(v) and v >= 2),
    Rule("model.num_classes", "an integer >= 2", lambda v: _int(v) and v >= 2),
    Rule("model.net.in_features", "an integer >= 1", lambda v: _int(v) and v >= 1),
    Rule("model.net.hidden", "an integer >= 1, or a list of them", _sizes),
    Rule("model.net.channels", "a list of integers >= 1", lambda v: _is_list(v) and _sizes(v)),
    Rule("model.scheduler.mode", "'min' or 'max'", lambda v: v in ("min", "max")),
    Rule("model.scheduler.factor", "a number in (0, 1)", lambda v: _num(v) and 0 < v < 1),
    Rule("model.scheduler.patience", "an integer >= 0", lambda v: _int(v) and v >= 0),
    Rule("model.scheduler.threshold", "a number >= 0", lambda v: _num(v) and v >= 0),
    Rule("model.scheduler.cooldown", "an integer >= 0", lambda v: _int(v) and v >= 0),
    Rule("model.scheduler.min_lr", "a number >= 0", lambda v: _num(v) and v >= 0),
    Rule("trainer.check_val_every_n_epoch", "an integer >= 1", lambda v: _int(v) and v >= 1),
    Rule("trainer.log_every_n_steps", "an integer >= 1", lambda v: _int(v) and v >= 1),
    Rule(
        "trainer.max_steps", "an integer >= 1, or -1 for no limit", lambda v: _int(v) and (v >= 1 or v == -1)
    ),
    Rule("trainer.min_epochs", "an integer >= 0", lambda v: _int(v) and v >= 0),
    Rule("trainer.num_sanity_val_steps", "an integer >= -1", lambda v: _int(v) and v >= -1),
    Rule("trainer.gradient_clip_val", "null or a number >= 0", lambda v: v is None or (_num(v) and v >= 0)),
    Rule("trainer.deterministic", "true, false or 'warn'", lambda v: isinstance(v, bool) or v == "warn"),
    Rule(
        "trainer.limit_train_batches", "a fraction in (0, 1] or a batch count >= 1", _limit(allow_zero=False)
    ),
    Rule("trainer.limit_val_batches", "a fraction in [0, 1] or a batch count >= 0", _limit(allow_zero=True)),
    Rule("trainer.limit_test_batches", "a fraction in [0, 1] or a batch count >= 0", _limit(allow_zero=True)),
    Rule("callbacks.model_checkpoint.save_top_k", "an integer >= -1", lambda v: _int(v) and v >= -1),
    Rule("callbacks.early_stopping.patience", "an integer >= 0", lambda v: _int(v) and v >= 0),
    Rule("callbacks.early_stopping.min_delta", "a number >= 0", lambda v: _num(v) and v >= 0),
    Rule("callbacks.preemption.filename", "a non-empty file name", lambda v: isinstance(v, str) and v != ""),
]

_ABSENT = object()


def check_rules(cfg: DictConfig, rules: list[Rule] = RULES) -> None:
    for rule in rules:
        value = OmegaConf.select(cfg, rule.key, default=_ABSENT)
        if value is not _ABSENT and not rule.ok(value):
            raise ConfigError(f"{rule.key}={value!r} is not allowed: use {rule.allowed}")


def logged_metric_names(cfg: DictConfig) -> list[str]:
    """Metric names the configured model and callbacks log (each may define ``metric_names()``)."""
    names: list[str] = []
    targets = [OmegaConf.select(cfg, "model._target_")]
    callbacks = cfg.get("callbacks") or {}
    targets += [c.get("_target_") for c in callbacks.values() if isinstance(c, DictConfig)]
    for target in filter(None, targets):
        cls = get_class(target)
        if hasattr(cls, "metric_names"):
            names += cls.metric_names()
    return names


def check_monitor(cfg: DictConfig) -> None:
    names = logged_metric_names(cfg)
    if not names:
        return
    for key in ("model.monitor", "best.metric", "optimized_metric"):
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and value not in names:
            raise ConfigError(f"{key}={value!r} is never logged: use one of {', '.join(names)}")
    monitor = OmegaConf.select(cfg, "model.monitor", default=None)
    if str(monitor).startswith("val/") and OmegaConf.select(cfg, "trainer.limit_val_batches", default=1) == 0:
        train_names = ", ".join(n for n in names if n.startswith("train/"))
        raise ConfigError(
            f"model.monitor={monitor!r} is never logged: trainer.limit_val_batches=0 turns validation off; "
            f"use one of {train_names}"
        )
    if monitor == "train/loss":  # Classifier logs it per step: the scheduler would see one batch's loss
        raise ConfigError(
            "model.monitor='train/loss' is logged per step, so the plateau scheduler would see one batch's "
            "loss: use train/loss_epoch, its sample-weighted epoch mean"
        )


def check_checkpoint_path(cfg: DictConfig) -> None:
    path = cfg.get("ckpt_path")
    if path is not None and not Path(path).is_file():
        raise ConfigError(
            f"ckpt_path={path!r}: no such checkpoint file; use an existing .ckpt file, 'last' or null"
        )


def check_config(cfg: DictConfig) -> None:
    check_rules(cfg)
    check_monitor(cfg)
    check_checkpoint_path(cfg)
