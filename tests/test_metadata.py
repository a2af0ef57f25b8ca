"""Every run dir gets run_metadata.yaml: git state, package versions, command line, resolved config."""

import subprocess
import sys
from importlib import metadata

import lightning
import pytest
import torch
import yaml

from litplate.runtime import run_metadata
from litplate.train import train


def git(*args: str, cwd) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def test_a_run_records_how_to_reproduce_it(cfg_factory, tmp_path):
    train(cfg_factory("trainer.max_epochs=1", "test=false", "model.optimizer.lr=0.0123"))
    saved = yaml.safe_load((tmp_path / "run_metadata.yaml").read_text())

    root = run_metadata.PROJECT_ROOT
    assert saved["git"] == {
        "commit": git("rev-parse", "HEAD", cwd=root).strip(),
        "dirty": bool(git("status", "--porcelain", cwd=root).strip()),
    }
    assert saved["packages"]["torch"] == torch.__version__
    assert saved["packages"]["lightning"] == lightning.__version__
    assert saved["packages"]["litplate"] == metadata.version("litplate")
    assert saved["command"].split()[0] == sys.executable
    # Resolved: the values the run used, no ${...} left.
    assert saved["config"]["model"]["optimizer"]["lr"] == 0.0123
    assert saved["config"]["model"]["monitor"] == "train/loss_epoch"
    assert saved["config"]["paths"]["output_dir"] == str(tmp_path)
    assert "${" not in (tmp_path / "run_metadata.yaml").read_text()


@pytest.fixture
def repo(tmp_path, monkeypatch):
    git("init", "-q", cwd=tmp_path)
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py", cwd=tmp_path)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init", cwd=tmp_path)
    monkeypatch.setattr(run_metadata, "PROJECT_ROOT", tmp_path)
    return tmp_path


def test_dirty_flag_follows_uncommitted_changes(repo):
    head = git("rev-parse", "HEAD", cwd=repo).strip()
    assert run_metadata.git_state() == {"commit": head, "dirty": False}
    (repo / "a.py").write_text("x = 2\n")
    assert run_metadata.git_state() == {"commit": head, "dirty": True}
    git("checkout", "-q", "a.py", cwd=repo)
    (repo / "new.py").write_text("")  # an untracked source file changes what runs, too
    assert run_metadata.git_state() == {"commit": head, "dirty": True}


def test_outside_a_checkout_git_state_is_unknown(tmp_path, monkeypatch):
    monkeypatch.setattr(run_metadata, "PROJECT_ROOT", tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert run_metadata.git_state() == {"commit": None, "dirty": None}
