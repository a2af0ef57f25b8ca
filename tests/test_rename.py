"""`make rename NAME=...` on a copy of the repo: nothing keeps the old name, and the copy still works."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import ROOT

spec = importlib.util.spec_from_file_location("rename", ROOT / "scripts" / "rename.py")
rename = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rename)

# Read off the tree, not written here: a renamed project's copy of this test must still pass.
OLD = rename.current_name(ROOT)
NEW = "myproject" if OLD != "myproject" else "myproject_renamed"


def copy_of_repo(dest):
    """The files a clone would have (plus new files not yet committed), as a fresh git checkout."""
    for source in rename.project_files(ROOT):
        target = dest / source.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    return dest


def run(*args, cwd, env=None):
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_renamed_copy_has_no_old_name_and_still_trains_and_tests(tmp_path):
    repo = copy_of_repo(tmp_path / "repo")
    done = run("make", "rename", f"NAME={NEW}", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert f"renamed src/{OLD} -> src/{NEW}" in done.stdout

    assert (repo / "src" / NEW / "train.py").is_file()
    assert not (repo / "src" / OLD).exists()
    assert re.search(rf'^name = "{NEW}"$', (repo / "pyproject.toml").read_text(), re.MULTILINE)
    assert (
        f"_target_: {NEW}.models.classifier.Classifier"
        in (repo / "conf" / "model" / "classifier.yaml").read_text()
    )
    assert (repo / "src" / NEW / "conf" / "train.yaml").is_file()  # the link to conf/ moved with the package
    leftovers = []
    for path in repo.rglob("*"):
        if path.is_file() and not path.is_symlink() and ".git" not in path.parts:
            try:
                text = path.read_text()
            except UnicodeDecodeError:
                continue
            if re.search(OLD, text, re.IGNORECASE):
                leftovers.append(str(path.relative_to(repo)))
    assert leftovers == []

    # The copy is not installed: its src/ goes first on the path, and no module of the old name remains.
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    run_dir = tmp_path / "run"
    train = (
        sys.executable,
        "train.py",
        "trainer.max_epochs=1",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={run_dir}",
    )
    done = run(*train, cwd=repo, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["config"]["model"]["_target_"] == f"{NEW}.models.classifier.Classifier"

    quick = ["tests/test_predict.py", "tests/test_sweep.py", "tests/test_rename.py"]
    quick += ["-m", "not slow", "-p", "no:cacheprovider"]
    done = run(sys.executable, "-m", "pytest", "-q", *quick, cwd=repo, env=env)
    assert done.returncode == 0, done.stdout[-3000:]
    assert re.search(r"\b\d+ passed\b", done.stdout)
    assert " failed" not in done.stdout


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("my-project", "NAME='my-project' is not allowed: use a lowercase Python identifier (a-z, 0-9, _)"),
        ("2fast", "NAME='2fast' is not allowed: use a lowercase Python identifier (a-z, 0-9, _)"),
        (OLD, f"NAME='{OLD}': the package is already called that"),
    ],
)
def test_bad_names_change_nothing(tmp_path, name, message):
    repo = tmp_path / "repo"
    (repo / "src" / OLD).mkdir(parents=True)
    (repo / "src" / OLD / "__init__.py").write_text(f'"""{OLD}"""\n')
    (repo / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "rename.py", repo / "scripts")
    done = run(sys.executable, "scripts/rename.py", name, cwd=repo)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {message}"
    assert (repo / "src" / OLD / "__init__.py").read_text() == f'"""{OLD}"""\n'
