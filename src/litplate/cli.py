"""Entry-point wrappers: configuration mistakes become one line on stderr, not a traceback."""

import difflib
import functools
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.errors import ConfigCompositionException, OverrideParseException
from omegaconf import DictConfig, OmegaConf

from litplate.config_checks import ConfigError
from litplate.run_stamp import run_stamp

# The repo's conf/ (src layout, editable install): absolute, so any working directory works.
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")
# Cached: every job of a sweep, and every later read, sees the same name.
OmegaConf.register_new_resolver("run_stamp", run_stamp, use_cache=True, replace=True)


# Read once at import: run() sets the variable itself while Hydra runs.
_USER_WANTS_TRACEBACKS = os.environ.get("HYDRA_FULL_ERROR") == "1"


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _one_line(error: BaseException) -> str:
    text = str(error)
    missing = re.search(r"Could not find '([^']+)/([^']+)'", text)
    if missing:
        group, name = missing.groups()
        options = sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))
        return f"{group}={name}: no such config; available: {', '.join(options)}"
    key = re.search(r"Could not override '([^']+)'", text)
    if key:
        return (
            f"{key.group(1)}: no such config key{_keys_beside(error)}; to add a new key, prefix it with '+'"
        )
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _keys_beside(error: BaseException) -> str:
    """The keys that do exist where an unknown one was given, read off OmegaConf's underlying error."""
    parent = getattr(error.__cause__, "parent_node", None)
    if not isinstance(parent, DictConfig):
        return ""
    keys = [str(k) for k in parent if k != "hydra"]
    close = difflib.get_close_matches(str(getattr(error.__cause__, "key", "")), keys, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{hint}; allowed keys there: {', '.join(keys)}"


def config_errors_in_one_line(task: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a Hydra task: a ``ConfigError`` prints one line and exits 2.

    Raised as SystemExit, which Hydra lets through, instead of its multi-line report.
    """

    @functools.wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return task(*args, **kwargs)
        except ConfigError as error:
            if _USER_WANTS_TRACEBACKS:
                raise
            _fail(str(error))

    return wrapper


def run(hydra_main: Callable[[], object]) -> None:
    """Call a ``@hydra.main`` function, reporting composition errors (unknown key, group or
    option) in one line. HYDRA_FULL_ERROR=1 makes Hydra re-raise them to us; a user who sets it
    themselves gets Hydra's full report instead.
    """
    if _USER_WANTS_TRACEBACKS:
        hydra_main()
        return
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        hydra_main()
    except (ConfigCompositionException, OverrideParseException) as error:
        _fail(_one_line(error))
    except OSError as error:  # e.g. Hydra creating the run directory on a full or read-only disk
        from litplate.faults import write_error_line  # imports Lightning: only on this path

        line = write_error_line(error)
        if line is None:
            raise
        _fail(line)
    finally:
        del os.environ["HYDRA_FULL_ERROR"]
