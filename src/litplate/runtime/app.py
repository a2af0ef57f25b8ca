"""The Hydra side of the entry points: config discovery, one-line errors, run directories.

Imports nothing heavy (no torch, no Lightning), so a mistyped key or option is reported before
those load. What a run is built from lives in ``assembly.py``.
"""

import functools
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException, OverrideParseException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import InterpolationResolutionError

from litplate.runtime.errors import ConfigError, composition_error_line, fail, write_error_line
from litplate.runtime.run_stamp import run_stamp
from litplate.runtime.upstream.hydra_multirun_delete import entries_off_as_null, is_multirun

# The package's conf/: in a checkout a link to the top-level conf/, in an installed wheel a copy of it.
# Absolute, so any working directory works.
CONFIG_DIR = str((Path(__file__).resolve().parents[1] / "conf").resolve())
# Cached: every job of a sweep, and every later read, sees the same name.
OmegaConf.register_resolver("run_stamp", run_stamp, use_cache=True, replace=True)
# ``${basename:${paths.output_dir}}``: the run directory's own name, e.g. a tracker's run name.
OmegaConf.register_resolver("basename", lambda path: Path(str(path)).name, replace=True)


# ---- entry points --------------------------------------------------------------------------------


def hydra_entry(
    config_name: str, resumes: bool = False
) -> Callable[[Callable[[DictConfig], Any]], Callable[[], None]]:
    """Decorate ``task(cfg)`` into a ``main()`` for the command line: Hydra composes the config from
    ``CONFIG_DIR``, and composition errors, ``ConfigError``s and unwritable run directories end in
    one line with exit code 2. ``HYDRA_FULL_ERROR=1`` shows the tracebacks instead. With
    ``resumes``, ``ckpt_path`` continues the checkpoint's own run (``resume_in_place``).
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
                _remove_hydra_only_run_dir()
                fail(str(error))

        hydra_main = hydra.main(config_path=CONFIG_DIR, config_name=config_name)(one_line_task)

        def main() -> None:
            sys.argv[1:] = entries_off_as_null(null_groups_removed(sys.argv[1:]))
            if resumes:
                sys.argv[1:] = resume_in_place(sys.argv[1:])
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


def _remove_hydra_only_run_dir() -> None:
    """A run refused for its config leaves no run directory behind: Hydra makes one, with its
    ``.hydra/`` record and a log file, before the task starts. Only a directory that holds nothing
    else is removed, so resuming into an existing run's directory never loses anything."""
    import shutil

    directory = Path(HydraConfig.get().runtime.output_dir)
    entries = list(directory.iterdir()) if directory.is_dir() else []
    if all(e.name == ".hydra" or (e.suffix == ".log" and e.is_file()) for e in entries):
        shutil.rmtree(directory, ignore_errors=True)


def quoted(value: str) -> str:
    """A Hydra override value that is taken literally, whatever characters the path holds."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def resume_in_place(overrides: list[str]) -> list[str]:
    """``ckpt_path=RUN/checkpoints/FILE`` continues in ``RUN``, the checkpoint's own run directory.

    The run's TensorBoard curves, checkpoints and log then go on where they stopped, and the best
    checkpoint so far is in the directory the run writes to. Hydra's record of the resuming command
    goes to ``RUN/.hydra/resumed_<time>/``, next to the original's. Not when the command names a
    run directory itself (``hydra.run.dir=``; ``BestCheckpoint`` then carries the best over), in a
    multirun, or for a checkpoint outside a run directory.
    """
    given = dict(o.split("=", 1) for o in overrides if "=" in o and not o.startswith(("~", "+")))
    path = given.get("ckpt_path")
    if not path or path in ("last", "null") or "hydra.run.dir" in given or is_multirun(overrides):
        return overrides
    checkpoint = Path(path).expanduser().resolve()
    run = checkpoint.parent.parent
    if not (checkpoint.is_file() and checkpoint.parent.name == "checkpoints" and (run / ".hydra").is_dir()):
        return overrides
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    return [*overrides, f"hydra.run.dir={quoted(str(run))}", f"hydra.output_subdir=.hydra/resumed_{stamp}"]


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
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")  # two runs a second apart are two runs
        resolved = Path(cfg.paths.log_dir) / cfg.task_name / "runs" / stamp
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


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The run's resolved config as plain containers, without Hydra's own node (it describes the
    launch, and holds values only a Hydra run can resolve)."""
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return OmegaConf.to_container(cfg, resolve=True)


# eval.yaml's and predict.yaml's own keys.
EVALUATION_KEYS = {
    "ckpt_path": (
        lambda v: isinstance(v, str),
        "null (the newest run's best), 'last' or a checkpoint file path",
    ),
    "use_ema": (is_bool, "true or false"),
    "trusted_targets": (
        lambda v: all(isinstance(p, str) and p.endswith(".") for p in v),
        "a list of package prefixes ending in '.', e.g. [mypackage.]",
    ),
}
