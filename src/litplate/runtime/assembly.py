"""The objects a run is made of, built from their config nodes, and the checks that need them built.

Data flows one way: ``train.py``/``eval.py``/``predict.py`` hand each config node to the builder
here that owns it; every builder gets that node and plain values, never the whole config. Errors a
component raises come back as one line naming the config key (``components.build``).
"""

from collections.abc import Iterable
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint, ProgressBar
from lightning.pytorch.utilities import rank_zero_info
from omegaconf import DictConfig, OmegaConf

from litplate.runtime import checkpointing, trainer_args
from litplate.runtime.arguments import check_node
from litplate.runtime.components import build
from litplate.runtime.errors import ConfigError
from litplate.runtime.training_plan import TrainingPlan
from litplate.runtime.trusted_targets import check_targets, checkpoint_configs
from litplate.runtime.upstream.lightning_21406_requeue_in_signal_handler import without_lightning_requeue

# ---- metric names --------------------------------------------------------------------------------


def logged_metrics(model: Any, callbacks: Iterable[Any]) -> dict[str, str | None]:
    """Every metric the module and its callbacks really log (each may define ``logged_metrics``),
    with the direction that is better, ``"min"`` or ``"max"``, where it is known."""
    found: dict[str, str | None] = {}
    for source in (model, *callbacks):
        if not hasattr(source, "logged_metrics"):
            continue
        names = source.logged_metrics() if source is model else source.logged_metrics(model)
        found |= names if isinstance(names, dict) else dict.fromkeys(names)
    for name in list(found):
        base = name.removesuffix("_best")
        if base != name:  # a best-so-far tracker: of a metric nobody logs, it logs nothing either
            if base in found:
                found[name] = found[name] or found[base]
            else:
                del found[name]
    return found


def check_metric_names(model: Any, callbacks: Iterable[Any], cfg: DictConfig, sweep: bool) -> None:
    """Every metric a key names is one that will be logged, watched the right way round.

    The keys: ``model.monitor`` (the plateau scheduler, whose ``mode`` must fit it), ``best.metric``
    with ``best.mode``, every callback's ``monitor`` (with its ``mode``), and, in a sweep,
    ``optimized_metric``. Checked before training: a typo would otherwise surface after the first
    epoch, and a loss watched with ``mode: max`` would quietly keep the worst checkpoint.
    """
    logged = logged_metrics(model, callbacks)
    if not logged:
        return
    wanted = [
        ("model.monitor", "model.scheduler.mode"),
        ("best.metric", "best.mode"),
        *((f"callbacks.{n}.monitor", f"callbacks.{n}.mode") for n in (cfg.get("callbacks") or {})),
    ]
    if sweep:
        wanted.append(("optimized_metric", "best.mode"))
    validation_off = OmegaConf.select(cfg, "trainer.limit_val_batches") == 0
    for key, mode_key in wanted:
        value = OmegaConf.select(cfg, key, default=None)
        if not isinstance(value, str):
            continue
        if value not in logged:
            raise ConfigError(f"={value!r} is never logged: use one of {', '.join(logged)}", key)
        if validation_off and value.startswith("val/"):
            train_names = ", ".join(n for n in logged if n.startswith("train/"))
            raise ConfigError(
                f"={value!r} is never logged: trainer.limit_val_batches=0 turns validation off; "
                f"use one of {train_names}",
                key,
            )
        mode, better = OmegaConf.select(cfg, mode_key, default=None), logged[value]
        if mode in ("min", "max") and better is not None and mode != better:
            side = "higher" if better == "max" else "lower"
            raise ConfigError(f"={mode!r} but {value} is better when {side}: use {better}", mode_key)
    if OmegaConf.select(cfg, "model.monitor", default=None) == "train/loss":
        raise ConfigError(
            "='train/loss' is logged per step, so the plateau scheduler would see one batch's "
            "loss: use train/loss_epoch, its sample-weighted epoch mean",
            "model.monitor",
        )


# ---- building ------------------------------------------------------------------------------------


def build_model(node: DictConfig, datamodule: Any) -> Any:
    """The model, with the shapes the datamodule states (``input_shape``, ``num_outputs``) passed in.

    Reading them is usually what sets the datamodule up (reads its files, splits them); what it
    refuses then is named under ``data``, as its constructor's refusals are by ``build``.
    """
    try:
        shapes = {k: getattr(datamodule, k) for k in ("input_shape", "num_outputs") if hasattr(datamodule, k)}
    except ConfigError as error:
        raise error.under("data") from None
    if "input_shape" in shapes:
        shapes["input_shape"] = list(shapes["input_shape"])
    return build(node, "model", **shapes)


def never_saves(callback: Any) -> bool:
    """A ModelCheckpoint with every trigger off (no step, epoch or time interval, no ``save_last``, no
    save on exception), like ``step_checkpoint`` by default: it would write nothing all run.

    Lightning still calls each of its hooks on every training step, and its per-step check costs
    more than the call, so ``build_trainer`` leaves it out (unless it is the only checkpoint
    callback: without one Lightning would add its own, which saves). Its triggers are read from Lightning's
    attributes; one that is missing counts as on, so the callback stays.
    """
    if not isinstance(callback, ModelCheckpoint):
        return False
    triggers = (
        getattr(callback, "_every_n_train_steps", 1),
        getattr(callback, "_every_n_epochs", 1),
        getattr(callback, "_train_time_interval", 1) is not None,
        callback.save_last,
        getattr(callback, "save_on_exception", True),
    )
    return not any(triggers)


def build_trainer(node: DictConfig, callbacks: list[Any], loggers: list[Any]) -> Any:
    """The Trainer. The callbacks a switch turns off step aside: progress bars with
    ``enable_progress_bar=false``, checkpoint callbacks (with one line) with ``enable_checkpointing=false``,
    checkpoint callbacks whose every trigger is off (``never_saves``). Under SLURM, when a callback
    handles the requeue signal (``PreemptionCheckpoint``), Lightning's own handler for it is off
    (``upstream/lightning_21406_requeue_in_signal_handler.py``).
    """
    check_node(node, trainer_args.Trainer, "trainer")  # train() checked them before torch loaded
    saving = [c for c in callbacks if not never_saves(c)]
    if any(isinstance(c, Checkpoint) for c in saving):  # with none left Lightning adds one that saves
        callbacks = saving
    if node.get("enable_progress_bar") is False:
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    if node.get("enable_checkpointing") is False and any(isinstance(c, Checkpoint) for c in callbacks):
        rank_zero_info("trainer.enable_checkpointing=false: no checkpoint callbacks, no checkpoints written")
        callbacks = [c for c in callbacks if not isinstance(c, Checkpoint)]
    plugins = without_lightning_requeue(node.get("plugins"), callbacks)
    extra = {} if plugins is None else {"plugins": plugins}
    return build(node, "trainer", callbacks=callbacks, logger=loggers or False, **extra)


def check_batches(trainer: Any, datamodule: Any, splits: Iterable[str]) -> None:
    """A ``limit_*_batches`` that leaves no batch at all is a mistake, not a run: say so before it starts."""
    plan = (
        TrainingPlan.from_trainer(trainer, loader=datamodule.train_dataloader())
        if "train" in splits
        else None
    )
    if plan is not None and plan.batches_per_epoch == 0 and not trainer.overfit_batches:
        raise ConfigError(
            f"={trainer.limit_train_batches!r} leaves 0 of {plan.loader_batches} training batches: "
            "use a fraction that keeps at least one, or a batch count >= 1",
            "trainer.limit_train_batches",
        )
    for split in set(splits) & {"val", "test"}:
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


def rebuild(ckpt_path: str, use_ema: bool, trusted: Iterable[str] = ()) -> tuple[Any, Any, str]:
    """The model (EMA or live weights) and the datamodule, as the checkpoint's own run built them.

    Both come from the run config stored in the checkpoint, so eval.py and predict.py evaluate on
    the split the model was trained against, whatever the command line composes. That config is
    untrusted data: every ``_target_`` in what is built from it must be a trusted class
    (``trusted_targets.py``; ``trusted`` adds prefixes) before anything is imported or built.
    """
    checkpoint = checkpointing.load_checkpoint(ckpt_path)
    stored = checkpoint.get("config")
    if isinstance(stored, dict):
        check_targets({"model": stored.get("model"), "data": stored.get("data")}, ckpt_path, trusted)
    run_cfg = checkpointing.run_config(checkpoint, ckpt_path)
    L.seed_everything(run_cfg.seed, verbose=False)
    try:
        with checkpoint_configs(trusted):
            datamodule = build(run_cfg.data, "data")
            model = build_model(run_cfg.model, datamodule)
    except ConfigError as error:
        raise ConfigError(
            f"the run config stored in {ckpt_path} does not build here: {error}", "ckpt_path"
        ) from None
    weights, label = checkpointing.weights_from(checkpoint, ema=use_ema)
    checkpointing.load_weights(model, weights)
    return model, datamodule, label
