"""Hydra entry points and the objects a run is made of, built from the composed config.

Data flows one way: ``train.py``/``eval.py``/``predict.py`` hand each config node to the builder
here that owns it, and every builder gets plain values, never the whole config. Errors any
component raises come back as one line naming the config key (``components.build``).
"""

import functools
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException, OverrideParseException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import InterpolationResolutionError

from litplate.runtime import checks
from litplate.runtime.components import build
from litplate.runtime.errors import (
    ArgumentError,
    ConfigError,
    composition_error_line,
    fail,
    write_error_line,
)
from litplate.runtime.run_stamp import run_stamp

# The package's conf/: in a checkout a link to the top-level conf/, in an installed wheel a copy of it.
# Absolute, so any working directory works.
CONFIG_DIR = str((Path(__file__).resolve().parents[1] / "conf").resolve())
# Cached: every job of a sweep, and every later read, sees the same name.
OmegaConf.register_new_resolver("run_stamp", run_stamp, use_cache=True, replace=True)


# ---- entry points --------------------------------------------------------------------------------


def hydra_entry(config_name: str) -> Callable[[Callable[[DictConfig], Any]], Callable[[], None]]:
    """Decorate ``task(cfg)`` into a ``main()`` for the command line: Hydra composes the config from
    ``CONFIG_DIR``, and composition errors, ``ConfigError``s and unwritable run directories end in
    one line with exit code 2. ``HYDRA_FULL_ERROR=1`` shows the tracebacks instead.
    """

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[[], None]:
        user_wants_tracebacks = os.environ.get("HYDRA_FULL_ERROR") == "1"

        @functools.wraps(task)
        def one_line_task(cfg: DictConfig) -> Any:
            try:
                return task(cfg)
            except ConfigError as error:
                if user_wants_tracebacks:
                    raise
                fail(str(error))

        hydra_main = hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=config_name)(
            one_line_task
        )

        def main() -> None:
            sys.argv[1:] = null_groups_removed(sys.argv[1:])
            if user_wants_tracebacks:
                hydra_main()
                return
            os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises composition errors to us
            try:
                hydra_main()
            except (ConfigCompositionException, OverrideParseException) as error:
                fail(composition_error_line(error, CONFIG_DIR))
            except OSError as error:  # e.g. Hydra creating the run directory on a read-only disk
                line = write_error_line(error)
                if line is None:
                    raise
                fail(line)
            finally:
                del os.environ["HYDRA_FULL_ERROR"]

        return main

    return decorate


def null_groups_removed(overrides: list[str]) -> list[str]:
    """``logger=null`` / ``callbacks=null`` as Hydra's ``~logger`` / ``~callbacks``.

    Hydra rejects ``GROUP=null`` for a group in the defaults list ("Config group override must be a
    string or a list"), yet it is what Lightning users type to switch loggers or callbacks off.
    """
    groups = {p.name for p in Path(CONFIG_DIR).iterdir() if p.is_dir()}
    rewritten = []
    for override in overrides:
        key, _, value = override.partition("=")
        rewritten.append(f"~{key}" if key in groups and value in ("null", "None") else override)
    return rewritten


def run_dir(cfg: DictConfig) -> Path:
    """``paths.output_dir`` made concrete, also for a config composed outside a Hydra run.

    ``train(cfg)`` called from Python or a notebook with Hydra's compose API has no Hydra runtime to
    resolve ``${hydra:runtime.output_dir}``; such a run gets ``<log_dir>/<task_name>/runs/<stamp>``.
    """
    try:
        resolved = cfg.paths.output_dir
    except InterpolationResolutionError:
        resolved = None  # no Hydra runtime (compose API)
    if resolved is None:  # also compose(return_hydra_config=True): a Hydra node without a run dir
        resolved = Path(cfg.paths.log_dir) / cfg.task_name / "runs" / time.strftime("%Y-%m-%d_%H-%M-%S")
    directory = Path(resolved)
    with open_dict(cfg):
        cfg.paths.output_dir = str(directory)
    return directory


def in_sweep() -> bool:
    """A Hydra multirun, whose sweeper reads the value ``optimized_metric`` names."""
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


# ---- checks of the entry configs' own keys -------------------------------------------------------


def check_keys(cfg: DictConfig, rules: dict[str, tuple[Callable[[Any], bool], str]]) -> None:
    """The entry config's own keys (``seed``, ``best.mode``...), each checked against what is allowed."""
    for key, (ok, allowed) in rules.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and not ok(value):
            raise ConfigError(f"={value!r} is not allowed: use {allowed}", key)


def is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ---- metric names --------------------------------------------------------------------------------


def logged_metric_names(model: Any, callbacks: Iterable[Any]) -> list[str]:
    """What the module and its callbacks really log (each may define ``logged_metrics``)."""
    names = list(model.logged_metrics()) if hasattr(model, "logged_metrics") else []
    for callback in callbacks:
        if hasattr(callback, "logged_metrics"):
            names += callback.logged_metrics(model)
    # A best-so-far tracker of a metric nobody logs logs nothing either.
    return [n for n in dict.fromkeys(names) if not n.endswith("_best") or n.removesuffix("_best") in names]


def check_metric_names(names: list[str], wanted: dict[str, str | None], validation_off: bool) -> None:
    """Every metric a key names (``model.monitor``, ``best.metric``...) is one that will be logged.

    Checked before training: a typo would otherwise surface after the first epoch, or never.
    """
    if not names:
        return
    for key, value in wanted.items():
        if value is None:
            continue
        if value not in names:
            raise ConfigError(f"={value!r} is never logged: use one of {', '.join(names)}", key)
        if validation_off and value.startswith("val/"):
            train_names = ", ".join(n for n in names if n.startswith("train/"))
            raise ConfigError(
                f"={value!r} is never logged: trainer.limit_val_batches=0 turns validation off; "
                f"use one of {train_names}",
                key,
            )
    if wanted.get("model.monitor") == "train/loss":
        raise ConfigError(
            "='train/loss' is logged per step, so the plateau scheduler would see one batch's "
            "loss: use train/loss_epoch, its sample-weighted epoch mean",
            "model.monitor",
        )


# ---- building ------------------------------------------------------------------------------------


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The run's resolved config as plain containers, without Hydra's own node (it describes the
    launch, and holds values only a Hydra run can resolve)."""
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return OmegaConf.to_container(cfg, resolve=True)


def build_model(node: DictConfig, datamodule: Any) -> Any:
    """The model, with the shapes the datamodule states (``input_shape``, ``num_outputs``) passed in."""
    shapes = {k: getattr(datamodule, k) for k in ("input_shape", "num_outputs") if hasattr(datamodule, k)}
    if "input_shape" in shapes:
        shapes["input_shape"] = list(shapes["input_shape"])
    return build(node, "model", **shapes)


def check_trainer_args(node: DictConfig) -> None:
    """The Trainer arguments Lightning takes without a check, then divides by mid-fit
    (``accumulate_grad_batches=0``, ``check_val_every_n_epoch=0``) or ignores (a negative
    ``gradient_clip_val``). Lightning refuses the other bad values itself, in one line."""
    try:
        checks.integer("accumulate_grad_batches", node.get("accumulate_grad_batches", 1), minimum=1)
        if node.get("check_val_every_n_epoch") is not None:
            checks.integer("check_val_every_n_epoch", node.check_val_every_n_epoch, minimum=1)
        clip = node.get("gradient_clip_val")
        if clip is not None and (isinstance(clip, bool) or not isinstance(clip, int | float) or clip < 0):
            raise ArgumentError.of("gradient_clip_val", clip, "null or a number >= 0")
    except ArgumentError as error:
        raise error.under("trainer") from None


def build_trainer(node: DictConfig, callbacks: list[Any], loggers: list[Any]) -> Any:
    """The Trainer; with ``enable_progress_bar=false`` the progress-bar callbacks step aside."""
    from lightning.pytorch.callbacks import ProgressBar

    check_trainer_args(node)
    if node.get("enable_progress_bar") is False:
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    return build(node, "trainer", callbacks=callbacks, logger=loggers or False)


def check_batches(trainer: Any, datamodule: Any) -> None:
    """A ``limit_*_batches`` that leaves no batch at all is a mistake, not a run: say so before it starts."""
    from litplate.runtime.training_plan import TrainingPlan

    plan = TrainingPlan.from_trainer(trainer, loader=datamodule.train_dataloader())
    if plan.batches_per_epoch == 0 and not trainer.overfit_batches:
        raise ConfigError(
            f"={trainer.limit_train_batches!r} leaves 0 of {plan.loader_batches} training batches: "
            "use a fraction that keeps at least one, or a batch count >= 1",
            "trainer.limit_train_batches",
        )
    for split in ("val", "test"):
        limit = getattr(trainer, f"limit_{split}_batches")
        loader = getattr(datamodule, f"{split}_dataloader", None)
        if not (isinstance(limit, float) and 0 < limit < 1) or loader is None:
            continue
        batches = len(loader())
        if int(batches * limit) == 0:
            raise ConfigError(
                f"={limit!r} leaves 0 of {batches} {split} batches: use at least {1 / batches:.3g}, "
                "a batch count, or 0 to skip",
                f"trainer.limit_{split}_batches",
            )


def checkpoint_for_evaluation(ckpt_path: str | None, log_dir: str) -> str:
    """``ckpt_path`` for eval/predict: a file, ``last`` (the newest training run's newest checkpoint),
    or null (that run's best checkpoint). Says which file it took when it chose one."""
    from litplate.runtime.checkpointing import checkpoint_of_newest_run

    if ckpt_path not in (None, "last"):
        return ckpt_path
    which = "last" if ckpt_path == "last" else "best"
    path = checkpoint_of_newest_run(Path(log_dir) / "train" / "runs", which=which)
    print(f"ckpt_path={ckpt_path or 'null'}: the newest training run's {which} checkpoint, {path}")
    return str(path)


def rebuild(ckpt_path: str, use_ema: bool) -> tuple[Any, Any, str]:
    """The model (EMA or live weights) and the datamodule, as the checkpoint's own run built them.

    Both come from the run config stored in the checkpoint, so eval.py and predict.py evaluate on
    the split the model was trained against, whatever the command line composes.
    """
    import lightning as L

    from litplate.runtime import checkpointing

    checkpoint = checkpointing.load_checkpoint(ckpt_path)
    run_cfg = checkpointing.run_config(checkpoint, ckpt_path)
    L.seed_everything(run_cfg.seed, verbose=False)
    try:
        datamodule = build(run_cfg.data, "data")
        model = build_model(run_cfg.model, datamodule)
    except ConfigError as error:
        raise ConfigError(
            f"the run config stored in {ckpt_path} does not build here: {error}", "ckpt_path"
        ) from None
    weights, label = checkpointing.weights_from(checkpoint, ema=use_ema)
    checkpointing.load_weights(model, weights)
    return model, datamodule, label
