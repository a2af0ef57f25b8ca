"""The README's commands, run as a new user would: in order, in a fresh copy of the repo.

Every line of a ```bash block is a command. Code blocks whose first line is ``# file: PATH`` are
files the README tells the reader to create; they are written into the copy first. Commands run
exactly as written with short-run overrides appended (one epoch of a few batches, two sweep
trials), and `make TARGET` runs the Makefile's own recipe with this suite's interpreter instead of
creating .venv. ``# exits N: TEXT`` after a command means it must fail with status N, its stderr
starting with TEXT. The commands this file does not run are in SKIPPED, with the reason.
"""

import importlib.util
import os
import re
import shlex
import subprocess
import sys

import pytest
from conftest import ROOT, make_cfg
from hydra.core.global_hydra import GlobalHydra
from test_rename import copy_of_repo

from litplate.data import DigitsDataModule
from litplate.runtime.training_plan import TrainingPlan

README = (ROOT / "README.md").read_text()
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
FILE_HEADER = "# file: "
EXPECTED_FAILURE = re.compile(r"#\s*exits (\d+): (.*)$")

# Substring of a command -> why this suite does not run it (the first match gives the reason).
SKIPPED = {
    "make test": "runs this suite: it would run itself (CI runs it as .ci/run)",
    "make tensorboard": "serves TensorBoard until stopped",
    "make mlflow": "serves the MLflow UI until stopped",
    "pip install -e '.[": "installs an extra that the suite's own install (.[dev]) already holds",
    "make rename": "tests/test_rename.py runs it on a copy of its own, then that copy's tests and a training",
    "hydra/launcher=slurm": "needs a SLURM cluster",
    'pip install -e ".[slurm]"': "installs the SLURM launcher, only for the SLURM recipe after it",
    "trainer.accelerator=gpu": "needs GPUs (test_gpu_and_cluster_recipes_compose checks its overrides)",
    "SLURM_PROCID=": "one of two SLURM tasks that run at once: tests/test_cluster.py starts both",
    "--node-rank=": "one of two torchrun nodes that run at once: tests/test_cluster.py starts both",
}

SHORT_TRAIN = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "~callbacks.progress_bar",
    "trainer.enable_progress_bar=false",
]


def files() -> dict[str, str]:
    return {
        body.splitlines()[0][len(FILE_HEADER) :].strip(): body
        for lang, body in BLOCK.findall(README)
        if lang in ("python", "yaml") and body.startswith(FILE_HEADER)
    }


def commands() -> list[str]:
    lines = []
    for lang, body in BLOCK.findall(README):
        if lang == "bash":
            lines += [line.strip() for line in body.replace("\\\n", " ").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def skip_reason(command: str) -> str | None:
    return next((reason for key, reason in SKIPPED.items() if key in command), None)


def short_form(command: str) -> list[str]:
    """argv to run: the command as written, plus overrides that make it quick."""
    argv = shlex.split(command, comments=True)
    if argv[0] == "make":
        argv = ["make", "-o", ".venv/.installed-stamp", f"PY={sys.executable}", *argv[1:]]
        if "train" in argv:
            argv.append(f"ARGS={' '.join(SHORT_TRAIN)}")
        return argv
    assert argv[0] == "python", f"README command of an unknown kind: {command}"
    argv[0] = sys.executable
    if argv[1] in ("train.py", "tune.py"):
        argv += SHORT_TRAIN
        if "+hparams_search=optuna" in argv or argv[1] == "tune.py":
            argv.append("hydra.sweeper.n_trials=2")
    return argv


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = copy_of_repo(tmp_path_factory.mktemp("readme") / "repo")
    for path, text in files().items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    return repo


def test_the_readme_has_the_two_commands_and_files_to_create():
    assert commands()[:2] == ["make train", "make test"]
    assert set(files()) == {
        "src/litplate/models/nets/residual_mlp_args.py",
        "src/litplate/models/nets/residual_mlp.py",
        "conf/model/net/residual_mlp.yaml",
        "src/litplate/data/wine.py",
        "src/litplate/data/wine_args.py",
        "conf/data/wine.yaml",
        "src/litplate/callbacks/weight_norm.py",
        "conf/callbacks/weight_norm.yaml",
    }


@pytest.mark.slow
@pytest.mark.parametrize("command", commands())
def test_readme_command(repo, command):
    reason = skip_reason(command)
    if reason:
        pytest.skip(reason)
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    done = subprocess.run(short_form(command), cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    expected = EXPECTED_FAILURE.search(command)
    if expected:
        status, message = expected.groups()
        assert done.returncode == int(status), done.stderr[-2000:]
        assert done.stderr.strip().startswith(message.strip())
    else:
        assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])


def test_gpu_and_cluster_recipes_compose():
    """What cannot run here is at least a valid config: every override names a real key or option."""
    recipes = [c for c in commands() if "trainer.accelerator=gpu" in c]
    assert len(recipes) >= 4
    if importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None:
        recipes = [c for c in recipes if "hydra/launcher" not in c]  # the launcher plugin is not installed
    for command in recipes:
        argv = shlex.split(command)
        overrides = [a for a in argv[argv.index("train.py") + 1 :] if a != "-m"]
        cfg = make_cfg(ROOT, overrides)
        assert cfg.trainer.accelerator == "gpu"
    GlobalHydra.instance().clear()


def test_the_step_arithmetic_quoted_in_the_readme_is_what_the_plan_prints():
    data = DigitsDataModule()
    data.setup()
    n = len(data.train_set)
    for accumulation in (1, 3):
        plan = TrainingPlan(
            num_samples=n, batch_size=64, world_size=1, num_nodes=1, accumulation=accumulation, max_epochs=30
        )
        quoted = [
            f"ceil({n} / 64) = {plan.batches_per_epoch}",
            f"ceil({plan.batches_per_epoch} / {accumulation}) = {plan.steps_per_epoch}",
            f"{plan.steps_per_epoch} x 30 = {plan.total_steps}",
            f"{plan.formula_steps:.2f}",
        ]
        assert [q for q in quoted if q not in README] == []
    assert f"N = {n:,} training digits" in README
    assert f"holds {plan.batch_sizes()[-1]} samples" in README
