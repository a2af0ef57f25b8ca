"""What it takes to reproduce a run, written next to it as ``run_metadata.yaml``.

A config alone does not pin a result: the code (git commit, and whether the tree had uncommitted
changes), the library versions and the exact command line matter as much. Hydra's own
``.hydra/config.yaml`` keeps interpolations unresolved (``${seed}``, ``${hydra:...}``), so the
resolved config is stored here as well: the values the run really used.
"""

import platform
import shlex
import subprocess
import sys
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement

# The checkout this package runs from (src layout, editable install).
PROJECT_ROOT = Path(__file__).resolve().parents[3]
DISTRIBUTION = __name__.split(".")[0]
FILENAME = "run_metadata.yaml"


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None  # no git, or not a checkout (installed from a wheel)
    return done.stdout


def git_state() -> dict[str, Any]:
    """Commit and dirty flag; untracked files count as dirty (git-ignored ones, such as logs/, do not)."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = _git("status", "--porcelain")
    return {"commit": commit.strip(), "dirty": bool(status and status.strip())}


def package_versions() -> dict[str, str]:
    """Versions of this project and of everything it declares as a dependency (dev extras included).

    Run from a source tree that is not installed, only the project itself is listed, as such.
    """
    try:
        requirements = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return {DISTRIBUTION: "not installed"}
    names = [DISTRIBUTION] + [Requirement(line).name for line in requirements]
    versions = {}
    for name in dict.fromkeys(names):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # an optional extra that is not installed
    return versions


def run_metadata(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "command": shlex.join([sys.executable, *sys.argv]),
        "cwd": str(Path.cwd()),
        "started": datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": platform.python_version(),
        "git": git_state(),
        "packages": package_versions(),
        "config": config,
    }


def save_run_metadata(config: dict[str, Any], output_dir: str | Path) -> Path:
    path = Path(output_dir) / FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's: ~30 ms less than OmegaConf.save
    path.write_text(yaml.dump(run_metadata(config), Dumper=dumper, sort_keys=False, allow_unicode=True))
    return path
