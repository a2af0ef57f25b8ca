"""Bad component values are refused before torch and Lightning load, by the components' own checks.

Each component declares its argument checks in a light ``*_args`` module next to it
(``runtime/arguments.py``); the class runs them when it is built and ``train()`` runs them on the
composed config first. These tests show that the early error comes before torch is imported (from
the interpreter's own import log), that it is the very line the component's constructor gives, and
that a component without such a module is still checked, when it is built.
"""

import re
import subprocess
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import yaml
from conftest import FAST, ROOT, make_cfg, run_script

from litplate.runtime import arguments, module_args, trainer_args
from litplate.runtime.app import CONFIG_DIR
from litplate.runtime.assembly import build_trainer
from litplate.runtime.components import build
from litplate.runtime.errors import ArgumentError, ConfigError
from litplate.train import train

HEAVY = ("torch", "lightning", "torchmetrics", "sklearn")
IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", re.MULTILINE)

# One bad value for each kind of component of ours: override -> the one line it must produce.
EARLY = {
    "net": ("model.net.dropout=1.5", "model.net.dropout=1.5 is not allowed: use a number in [0, 1)"),
    "model": ("model.regularization.l2=-1", "model.regularization.l2=-1 is not allowed: use a number >= 0"),
    "optimizer": ("model.optimizer.lr=0", "model.optimizer.lr=0 is not allowed: use a number > 0"),
    "data": ("data.batch_size=0", "data.batch_size=0 is not allowed: use an integer >= 1"),
    "callback": ("callbacks.ema.decay=1", "callbacks.ema.decay=1 is not allowed: use a number in (0, 1)"),
    # Lightning's class, with the checks Lightning does not make (runtime/trainer_args.py)
    "trainer": (
        "trainer.accumulate_grad_batches=0",
        "trainer.accumulate_grad_batches=0 is not allowed: use an integer >= 1",
    ),
}


@pytest.mark.parametrize("kind", EARLY)
def test_a_component_value_is_refused_before_torch_is_imported(tmp_path, kind):
    override, line = EARLY[kind]
    run_dir = tmp_path / "run"
    result = run_script(
        "train.py", override, f"hydra.run.dir={run_dir}", cwd=tmp_path, env={"PYTHONPROFILEIMPORTTIME": "1"}
    )
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [text for text in result.stderr.splitlines() if not text.startswith("import time:")]
    assert errors == [f"error: {line}"]
    imported = {name.split(".")[0] for name in IMPORTED.findall(result.stderr)}
    assert "hydra" in imported  # the log is complete: the config was composed
    assert not imported & set(HEAVY)
    assert not run_dir.exists()  # nothing written, not even Hydra's record


# A bad value for every rule of every Arguments declared for the shipped components: override ->
# (the node that refuses it, what it is built with besides its config).
SHAPES = {"input_shape": [1, 8, 8], "num_outputs": 10}
EVERY_COMPONENT = {
    "model.net.hidden=[64,0]": ("model", SHAPES),
    "model/net=cnn model.net.channels=[]": ("model", SHAPES),
    "model/net=cnn model.net.dropout=-0.5": ("model", SHAPES),
    "model.compile=maybe": ("model", SHAPES),
    "model.regularization.l1=-1": ("model", SHAPES),
    "model.optimizer.lr=-0.1": ("model", SHAPES),
    "+model.scheduler.cooldown=1.5": ("model", SHAPES),
    "+model.scheduler.threshold=-1": ("model", SHAPES),
    "model.scheduler.factor=1.5": ("model", SHAPES),
    "model.optimizer.weight_decay=-1": ("model", SHAPES),
    "model/optimizer=sgd model.optimizer.momentum=0 +model.optimizer.nesterov=true": ("model", SHAPES),
    "model=regressor model.regularization.l2=-1": ("model", {"input_shape": [10], "num_outputs": 1}),
    "data.eval_batch_size=0": ("data", {}),
    "data.val_fraction=0.6 data.test_fraction=0.5": ("data", {}),
    "data.prefetch_factor=0": ("data", {}),
    "data.pin_memory=yes": ("data", {}),
    "data=diabetes data.standardize_targets=1": ("data", {}),
    "data=synthetic data.label_noise=1.0": ("data", {}),
    "data=image_folder data.root=IMAGES data.channels=2": ("data", {}),
    "data=image_folder data.root=IMAGES data.mean=[0.5,0.5,0.5]": ("data", {}),
    "data=image_folder data.root=IMAGES data.image_size=[8,8,8]": ("data", {}),
    "data=image_folder data.root=MISSING": ("data", {}),
    "callbacks.ema.buffers=mean": ("callbacks.ema", {}),
    "callbacks.nonfinite_guard.check_every_n_steps=-1": ("callbacks.nonfinite_guard", {}),
    "callbacks.preemption.filename=''": ("callbacks.preemption", {}),
    "callbacks.best_score.mode=best": ("callbacks.best_score", {}),
    "callbacks.model_checkpoint.save_top_k=-2": ("callbacks.model_checkpoint", {}),
    "callbacks.model_checkpoint.mode=best": ("callbacks.model_checkpoint", {}),
    "callbacks.last_checkpoint.save_top_k=-3": ("callbacks.last_checkpoint", {}),
    "callbacks.step_checkpoint.every_n_train_steps=-1": ("callbacks.step_checkpoint", {}),
}


@pytest.mark.parametrize("overrides", EVERY_COMPONENT)
def test_the_early_check_is_the_components_own(tmp_path, image_folder, overrides):
    """Before torch loads and when the component is built, the same line: one source of truth."""
    key, extra = EVERY_COMPONENT[overrides]
    given = overrides.replace("IMAGES", str(image_folder)).replace("MISSING", str(tmp_path / "none"))
    cfg = make_cfg(tmp_path, [*FAST, *given.split()])
    with pytest.raises(ConfigError) as early:
        arguments.check_config(cfg)
    with pytest.raises(ConfigError) as built:
        build(cfg[key] if "." not in key else cfg.callbacks[key.split(".")[1]], key, **extra)
    assert str(early.value) == str(built.value)
    assert str(early.value).startswith(key)


@pytest.mark.parametrize(
    "override",
    [
        "trainer.check_val_every_n_epoch=0",
        "trainer.gradient_clip_val=-0.5",
        "trainer.accumulate_grad_batches=2.5",
        "trainer.devices=0",
        "trainer.num_nodes=0",
        "trainer.max_epochs=-2",
        "trainer.max_steps=-2",
        "trainer.limit_train_batches=1.5",
        "trainer.precision=bf16mixed",
        "trainer.gradient_clip_algorithm=l2",
        "trainer.accelerator=gpus",
        "trainer.strategy=dpp",
    ],
)
def test_the_early_trainer_check_is_the_one_made_when_it_is_built(tmp_path, override):
    cfg = make_cfg(tmp_path, [*FAST, override])
    with pytest.raises(ConfigError) as early:
        arguments.check_node(cfg.trainer, trainer_args.Trainer, "trainer")
    with pytest.raises(ConfigError) as built:
        build_trainer(cfg.trainer, [], [])
    assert str(early.value) == str(built.value)
    assert str(early.value).split(" is not allowed")[0].replace("'", "") == override  # strings quoted


# Each side of every boundary of the Trainer values Lightning itself refuses (runtime/trainer_args.py).
LIGHTNING_REFUSES = [
    ("devices", 0), ("devices", -2), ("num_nodes", 0), ("num_nodes", 1.5), ("max_epochs", -2),
    ("max_steps", -2), ("max_steps", None), ("limit_train_batches", -1), ("limit_val_batches", 1.5),
    ("precision", 17), ("precision", 32.0), ("precision", True), ("precision", "BF16-mixed"),
    ("precision", "fp16"), ("gradient_clip_algorithm", "l2"), ("gradient_clip_algorithm", 1),
    ("accelerator", "gpus"), ("accelerator", "CPU"), ("accelerator", None), ("accelerator", 1),
    ("strategy", "dpp"), ("strategy", " ddp"), ("strategy", None), ("strategy", 2),
]  # fmt: skip
LIGHTNING_TAKES = [
    ("devices", 1), ("devices", "auto"), ("num_nodes", 1), ("max_epochs", -1), ("max_epochs", 0),
    ("max_epochs", None), ("max_steps", -1), ("max_steps", 0), ("limit_train_batches", 0),
    ("limit_train_batches", 0.5), ("limit_train_batches", 1.0), ("limit_train_batches", 5),
    ("limit_test_batches", 5.0), ("limit_predict_batches", None),
    ("precision", None), ("precision", "32-true"), ("precision", 32), ("precision", "64"),
    ("precision", "bf16"), ("precision", "bf16-mixed"), ("precision", "bf16-true"), ("precision", "16-true"),
    ("gradient_clip_algorithm", None), ("gradient_clip_algorithm", "norm"),
    ("gradient_clip_algorithm", "Value"),
    ("accelerator", "cpu"), ("accelerator", "auto"), ("strategy", "auto"), ("strategy", "ddp"),
    ("strategy", "DDP"), ("strategy", "ddp_spawn"), ("strategy", "single_device"),
    ("strategy", "ddp_find_unused_parameters_true"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("key", "value", "refused"),
    [(*case, True) for case in LIGHTNING_REFUSES] + [(*case, False) for case in LIGHTNING_TAKES],
)
def test_the_early_trainer_rules_refuse_exactly_what_lightning_refuses(key, value, refused):
    # Lightning's own Trainer, built without our rules on the CPU: an early rule must never refuse
    # a value that Lightning takes, nor let through one that it refuses later (with TypeError,
    # ValueError or an exception of its own).
    trainer = {"accelerator": "cpu", "logger": False, "enable_checkpointing": False, key: value}
    lightning_refuses = refuses(lambda: L.Trainer(**trainer), Exception)
    we_refuse = refuses(lambda: trainer_args.Trainer.checked({key: value}), ArgumentError)
    assert (we_refuse, lightning_refuses) == (refused, refused)


def refuses(build: Callable[[], Any], errors: type[Exception]) -> bool:
    """Whether ``build()`` raises one of ``errors``."""
    try:
        build()
    except errors:
        return True
    return False


# Each side of every boundary of torch's own rules for the everyday optimizers and the plateau
# scheduler (runtime/module_args.py): (class, argument, value, refused).
TORCH_BOUNDARIES = [
    ("AdamW", "lr", -0.1, True), ("AdamW", "lr", 0.1, False), ("AdamW", "weight_decay", -0.01, True),
    ("AdamW", "weight_decay", 0.0, False), ("AdamW", "eps", -1e-8, True), ("AdamW", "eps", 0.0, False),
    ("AdamW", "betas", [0.9, 1.0], True), ("AdamW", "betas", [-0.1, 0.9], True),
    ("AdamW", "betas", [0.0, 0.999], False), ("Adam", "weight_decay", -1, True),
    ("Adam", "betas", [0.5, 0.5], False),
    ("SGD", "momentum", -0.5, True), ("SGD", "momentum", 0.0, False), ("SGD", "weight_decay", -1, True),
    ("SGD", "nesterov", True, True), ("SGD", "nesterov", False, False),
    ("ReduceLROnPlateau", "factor", 1.0, True), ("ReduceLROnPlateau", "factor", 0.99, False),
    ("ReduceLROnPlateau", "mode", "maximum", True), ("ReduceLROnPlateau", "mode", "max", False),
    ("ReduceLROnPlateau", "threshold_mode", "relative", True),
    ("ReduceLROnPlateau", "threshold_mode", "abs", False),
]  # fmt: skip


@pytest.mark.parametrize(("cls", "key", "value", "refused"), TORCH_BOUNDARIES)
def test_the_early_optimizer_and_scheduler_rules_refuse_what_torch_refuses(cls, key, value, refused):
    params = [torch.nn.Parameter(torch.zeros(2))]
    if cls == "ReduceLROnPlateau":
        group, target = "scheduler", f"torch.optim.lr_scheduler.{cls}"
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau
        torch_refuses = refuses(lambda: plateau(torch.optim.SGD(params, lr=0.1), **{key: value}), ValueError)
    else:
        group, target = "optimizer", f"torch.optim.{cls}"
        optimizer = getattr(torch.optim, cls)
        torch_refuses = refuses(lambda: optimizer(params, **{"lr": 0.1, key: value}), ValueError)
    node = {"_target_": target, key: value}
    we_refuse = refuses(lambda: module_args.TaskModule.checked({group: node}), ArgumentError)
    assert (we_refuse, torch_refuses) == (refused, refused)


def test_the_early_names_are_lightnings():
    # Fails when Lightning adds or drops a name: the early rules must then follow.
    from lightning.fabric.plugins.precision.precision import _PRECISION_INPUT
    from lightning.pytorch.accelerators import AcceleratorRegistry
    from lightning.pytorch.strategies import StrategyRegistry

    precisions = {name for literal in typing.get_args(_PRECISION_INPUT) for name in typing.get_args(literal)}
    assert precisions == {*trainer_args.PRECISIONS, *trainer_args.PRECISION_ALIASES}
    assert {*AcceleratorRegistry.available_accelerators(), "auto", "gpu"} == set(trainer_args.ACCELERATORS)
    assert {*StrategyRegistry.available_strategies(), "auto"} == set(trainer_args.STRATEGIES)


def test_a_component_without_declared_arguments_is_checked_when_built(tmp_path):
    # tests/net_without_arguments.py checks its arguments in its constructor only, as any class
    # without an *_args module: the same one line, once torch is imported and the net is built.
    cfg = make_cfg(tmp_path, [*FAST, "model.net._target_=net_without_arguments.Net", "model.net.dropout=2"])
    arguments.check_config(cfg)  # nothing declared: nothing to refuse yet
    with pytest.raises(ConfigError) as error:
        train(cfg)
    assert str(error.value) == "model.net.dropout=2 is not allowed: use a number in [0, 1)"


def _our_targets() -> set[str]:
    found = set()
    for path in Path(CONFIG_DIR).rglob("*.yaml"):
        found |= set(re.findall(r"_target_: (litplate\.\S+)", path.read_text()))
    return found


# Our classes in conf/ that declare no arguments: their arguments are Lightning's (Lightning
# checks them when they are built) or they take none.
LIGHTNING_ARGUMENTS = {
    "litplate.runtime.callbacks.lr_monitor.LearningRateMonitor",
    "litplate.runtime.tensorboard_logger.TensorBoardLogger",
    "litplate.runtime.callbacks.progress_bar.RichProgressBar",
    "litplate.runtime.callbacks.progress_bar.TQDMProgressBar",
    "litplate.runtime.checkpointing.AtomicCheckpointIO",
}
NO_ARGUMENTS = {
    "litplate.runtime.callbacks.rng_state.RngStateCheckpoint",
    "litplate.runtime.callbacks.training_plan.TrainingPlanPrinter",
}


def test_every_component_of_ours_in_the_configs_declares_its_arguments():
    targets = _our_targets()
    assert len(targets) > 15
    undeclared = {t for t in targets if arguments.arguments_of(t) is None}
    assert undeclared == LIGHTNING_ARGUMENTS | NO_ARGUMENTS


def test_argument_modules_import_nothing_heavy():
    modules = sorted(
        ".".join(path.relative_to(ROOT / "src").with_suffix("").parts)
        for path in (ROOT / "src" / "litplate").rglob("*_args.py")
    )
    assert len(modules) >= 15
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def test_the_configs_name_the_module_that_defines_each_class():
    # The early check finds a class's arguments next to the module its _target_ names: a package's
    # re-export (litplate.models.nets.MLP) would hide them.
    for target in _our_targets():
        module, _, name = target.rpartition(".")
        source = (ROOT / "src" / Path(*module.split("."))).with_suffix(".py").read_text()
        assert re.search(rf"^class {name}\b", source, re.MULTILINE), target
    saved = yaml.safe_load((Path(CONFIG_DIR) / "model" / "net" / "mlp.yaml").read_text())
    assert saved["_target_"] == "litplate.models.nets.mlp.MLP"
