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
    Rule("best.mode", "'min' or 'max'", lambda v: v in ("min", "max")),
    Rule("callbacks.ema.decay", "a number in (0, 1)", lambda v: _num(v) and 0 < v < 1),
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


def check_checkpoint_path(cfg: DictConfig) -> None:
    path = cfg.get("ckpt_path")
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"ckpt_path={path!r}: no such checkpoint file")


def check_config(cfg: DictConfig) -> None:
    check_rules(cfg)
    check_monitor(cfg)
    check_checkpoint_path(cfg)
