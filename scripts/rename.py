"""Rename the project's package everywhere: ``make rename NAME=myproject``.

Moves ``src/<old>/`` to ``src/<new>/`` and replaces the old name as a whole word in every text file
of the project (imports, configs' ``_target_``s, pyproject.toml, README and docs), in lower, Title
and UPPER case. The files are the ones git knows (tracked, or new and not ignored); outside a git
checkout, every file except virtual environments, logs and caches. Run ``make test`` afterwards: the
changed pyproject.toml makes it reinstall the package under its new name.
"""

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "logs",
    "outputs",
    "multirun",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
}
VALID = re.compile(r"[a-z_][a-z0-9_]*")


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def current_name(root: Path) -> str:
    packages = [p.name for p in (root / "src").iterdir() if (p / "__init__.py").is_file()]
    if len(packages) != 1:
        fail(f"expected one package under src/, found {packages or 'none'}")
    return packages[0]


def project_files(root: Path) -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout.decode()
        files = [root / name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        files = [
            p for p in root.rglob("*") if p.is_file() and not SKIP_DIRS & set(p.relative_to(root).parts[:-1])
        ]
    return [p for p in files if p.is_file() or p.is_symlink()]


def rename(root: Path, new: str) -> list[Path]:
    """Returns the files whose text changed (paths after the move)."""
    old = current_name(root)
    if not VALID.fullmatch(new):
        fail(f"NAME={new!r} is not allowed: use a lowercase Python identifier (a-z, 0-9, _)")
    if new == old:
        fail(f"NAME={new!r}: the package is already called that")
    if (root / "src" / new).exists():
        fail(f"NAME={new!r}: src/{new} already exists")
    files = project_files(root)
    pattern = re.compile(rf"\b({old}|{old.title()}|{old.upper()})\b")
    replacement = {old: new, old.title(): new.title(), old.upper(): new.upper()}

    changed = []
    for path in files:
        if path.is_symlink():
            continue  # src/<name>/conf -> ../../conf: moves with the package, nothing to rewrite
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # binary (images)
        updated = pattern.sub(lambda m: replacement[m.group(1)], text)
        if updated != text:
            path.write_text(updated)
            changed.append(path)

    (root / "src" / old).rename(root / "src" / new)
    for stale in (root / "src").glob(f"{old}.egg-info"):
        shutil.rmtree(stale)  # build metadata of the old name; reinstalling writes the new one
    moved = root / "src" / old
    return [root / "src" / new / p.relative_to(moved) if p.is_relative_to(moved) else p for p in changed]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="new package name, a lowercase Python identifier")
    args = parser.parse_args(argv)
    old = current_name(ROOT)
    changed = rename(ROOT, args.name)
    print(f"renamed src/{old} -> src/{args.name}; replaced the name in {len(changed)} files")
    print("next: make test (reinstalls the package under its new name)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
