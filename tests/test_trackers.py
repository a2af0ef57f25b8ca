"""MLflow and Weights & Biases as loggers, read back with their own clients after real runs.

Three ``train.py`` commands carry every check: one process with ``logger=[tensorboard,mlflow,wandb]``,
whose TensorBoard events are the reference the trackers must agree with; a two-process gloo DDP run,
where exactly one run per tracker may appear and only rank 0 may write to it; and a two-job sweep,
whose jobs share a process but not their runs. MLflow is read
with ``MlflowClient``; the W&B run is offline and read from its transaction log (``run-*.wandb``) by
wandb's own reader, ``wandb leet inspect --json``, one JSON record per line. Nothing may contact a
network or write outside the tests' temporary directories.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from conftest import ROOT, make_cfg, run_script
from hydra.core.global_hydra import GlobalHydra
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from litplate.runtime.callbacks.trackers import BEST_CHECKPOINT_KEY, CONFIG_FILE, TrackerRecords, trackers_of
from litplate.runtime.checkpointing import best_path_in
from litplate.runtime.components import build_group

EPOCHS = 2
QUICK = [f"trainer.max_epochs={EPOCHS}", "trainer.enable_progress_bar=false", "~callbacks.progress_bar"]
TESTS = str(Path(__file__).parent)

Series = list[tuple[int, float]]  # (step, value) in the order logged


def tracker_env(tmp: Path) -> dict[str, str]:
    """Offline and quiet, with wandb's own folders (debug logs, cache, settings) under ``tmp``."""
    dirs = {name: tmp / "wandb_home" / name for name in ("cache", "config", "data")}
    return {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_CACHE_DIR": str(dirs["cache"]),
        "WANDB_CONFIG_DIR": str(dirs["config"]),
        "WANDB_DATA_DIR": str(dirs["data"]),
        "PYTHONPATH": TESTS,  # rank_probe, for the DDP run
    }


def train(tmp: Path, name: str, *overrides: str) -> Path:
    """``python train.py`` with the log dir and run dir under ``tmp``; returns the run dir."""
    run_dir = tmp / name
    done = run_script(
        "train.py",
        *QUICK,
        f"paths.log_dir={tmp / 'logs'}",
        f"hydra.run.dir={run_dir}",
        *overrides,
        env=tracker_env(tmp),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return run_dir


# ---- reading back --------------------------------------------------------------------------------


def tensorboard_series(run_dir: Path) -> dict[str, Series]:
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def mlflow_client(tmp: Path) -> Any:
    from mlflow import MlflowClient  # imported here: 2 s that collecting the fast tests should not pay

    return MlflowClient(tracking_uri=f"sqlite:///{tmp / 'logs' / 'mlflow.db'}")


def mlflow_series(client: Any, run_id: str) -> dict[str, Series]:
    keys = client.get_run(run_id).data.metrics
    return {
        key: [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key), key=_logged_order)]
        for key in keys
    }


def _logged_order(metric: Any) -> tuple[int, int]:
    return metric.step, metric.timestamp


def wandb_run_dirs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "wandb").glob("offline-run-*"))


def wandb_records(offline_run: Path) -> list[dict[str, Any]]:
    """Every record of the run's transaction log, as wandb's own reader prints them."""
    done = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(offline_run)],
        capture_output=True, text=True, timeout=60, check=True,
        env={**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"},
    )  # fmt: skip
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def of_type(records: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r[kind] for r in records if r.get("type") == kind]


def wandb_series(records: list[dict[str, Any]]) -> dict[str, Series]:
    """Per key, ``(trainer/global_step, value)`` of the history rows that hold it (WandbLogger puts
    the trainer's step into every row it logs); wandb's own ``_``-keys left out."""
    series: dict[str, Series] = {}
    for history in of_type(records, "history"):
        row = history["item"]
        for key, value in row.items():
            if not key.startswith("_") and key != "trainer/global_step":
                series.setdefault(key, []).append((row["trainer/global_step"], value))
    return series


def wandb_config(records: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for config in of_type(records, "config"):
        merged |= config.get("update", {})
    return {k: v for k, v in merged.items() if not k.startswith("_wandb")}


def wandb_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for summary in of_type(records, "summary"):
        merged |= summary.get("update", {})
    return merged


def assert_same_series(got: dict[str, Series], reference: dict[str, Series]) -> None:
    """Every scalar TensorBoard has, with the same steps and values (TensorBoard keeps float32)."""
    assert set(reference) <= set(got), set(reference) - set(got)
    for key, expected in reference.items():
        assert [s for s, _ in got[key]] == [s for s, _ in expected], key
        assert [v for _, v in got[key]] == pytest.approx([v for _, v in expected], rel=1e-6), key


def flattened(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested keys joined with '/', as Lightning flattens hyperparameters for MLflow: a list of dicts
    is numbered (``trainer/plugins/0/_target_``), other lists are values."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat |= flattened(value, name)
        elif isinstance(value, list) and all(isinstance(item, dict) for item in value):
            for i, item in enumerate(value):
                flat |= flattened(item, f"{name}/{i}")
        else:
            flat[name] = value
    return flat


def run_config_and_best(run_dir: Path) -> tuple[dict[str, Any], str]:
    """The config stored in the run's checkpoints, and the best checkpoint they record."""
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    best = best_path_in(last, "val/acc")
    assert best is not None
    return last["config"], str(Path(best).resolve())


# ---- one process: TensorBoard, MLflow and W&B side by side --------------------------------------


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trackers")
    before = {p.name for p in ROOT.iterdir()}
    run_dir = train(tmp, "run", "logger=[tensorboard,mlflow,wandb]")
    return tmp, run_dir, before


@pytest.mark.slow
def test_mlflow_run_holds_metrics_params_config_and_best_checkpoint(single):
    tmp, run_dir, _ = single
    config, best = run_config_and_best(run_dir)
    client = mlflow_client(tmp)
    experiment = client.get_experiment_by_name("train")  # ${task_name}
    (run,) = client.search_runs([experiment.experiment_id])
    run_id = run.info.run_id
    assert run.info.run_name == "run"  # the run directory's name
    assert run.info.status == "FINISHED"
    assert Path(run.info.artifact_uri).is_relative_to(tmp / "logs")  # not ./mlruns

    # Metrics: what TensorBoard got, step for step; val/acc once per epoch.
    series = mlflow_series(client, run_id)
    assert_same_series(series, tensorboard_series(run_dir))
    assert len(series["val/acc"]) == EPOCHS

    # Params: the whole flattened config, none dropped or cut to MLflow's (or Lightning's) limits.
    expected = {key: str(value) for key, value in flattened(config).items()}
    assert max(len(v) for v in expected.values()) <= 250  # what Lightning's MLFlowLogger keeps of a value
    assert run.data.params == expected
    assert run.data.params["model/optimizer/lr"] == "0.003"

    # The run config as an artifact, and the best checkpoint as a tag.
    assert [a.path for a in client.list_artifacts(run_id)] == [CONFIG_FILE]
    local = client.download_artifacts(run_id, CONFIG_FILE, str(tmp / "downloaded"))
    assert yaml.safe_load(Path(local).read_text()) == config
    assert run.data.tags[BEST_CHECKPOINT_KEY] == best
    assert Path(best).is_file() and Path(best).parent == run_dir / "checkpoints"


@pytest.mark.slow
def test_wandb_offline_run_holds_metrics_config_and_best_checkpoint(single):
    _, run_dir, _ = single
    config, best = run_config_and_best(run_dir)
    (offline_run,) = wandb_run_dirs(run_dir)  # under the run dir, not ./wandb
    records = wandb_records(offline_run)
    (run,) = of_type(records, "run")
    assert run["display_name"] == "run" and run["project"] == "litplate"
    assert run["telemetry"]["feature"]["offline"] is True
    assert of_type(records, "exit")[0]["exit_code"] == 0

    series = wandb_series(records)
    assert_same_series(series, tensorboard_series(run_dir))
    assert len(series["val/acc"]) == EPOCHS
    assert wandb_config(records) == config  # log_hyperparams: the nested config as it is
    saved = [f["path"] for files in of_type(records, "files") for f in files["files"]]
    assert CONFIG_FILE in saved
    assert yaml.safe_load((offline_run / "files" / CONFIG_FILE).read_text()) == config
    assert wandb_summary(records)[BEST_CHECKPOINT_KEY] == best


@pytest.mark.slow
def test_nothing_written_outside_the_temporary_directories(single):
    tmp, _, before = single
    assert {p.name for p in ROOT.iterdir()} == before  # no mlruns/, mlartifacts/, wandb/, mlflow.db
    assert sorted(p.name for p in (tmp / "logs").iterdir()) == ["mlflow-artifacts", "mlflow.db"]


# ---- two processes: one run per tracker, written by rank 0 --------------------------------------


@pytest.fixture(scope="module")
def ddp(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trackers_ddp")
    run_dir = train(
        tmp,
        "run",
        "logger=[tensorboard,mlflow,wandb]",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "+callbacks.probe._target_=rank_probe.RankProbe",
        f"+callbacks.probe.out={tmp / 'probes'}",
    )
    probes = [json.loads(p.read_text()) for p in (tmp / "probes").glob("*.json")]
    return tmp, run_dir, sorted(probes, key=lambda record: record["rank"])


@pytest.mark.slow
def test_ddp_makes_one_run_per_tracker_and_only_rank_zero_writes(ddp):
    tmp, run_dir, probes = ddp
    assert [p["rank"] for p in probes] == [0, 1] and probes[0]["pid"] != probes[1]["pid"]
    # TensorBoard's events come from rank 0's process only: the reference for the trackers.
    events = list((run_dir / "tensorboard").glob("events.*"))
    assert events and {e.name.split(".")[-2] for e in events} == {str(probes[0]["pid"])}
    reference = tensorboard_series(run_dir)
    config, best = run_config_and_best(run_dir)

    client = mlflow_client(tmp)
    experiments = client.search_experiments()
    (run,) = client.search_runs([e.experiment_id for e in experiments])
    series = mlflow_series(client, run.info.run_id)
    assert_same_series(series, reference)  # each value once: a second writer would repeat steps
    assert len(series["val/acc"]) == EPOCHS
    assert run.data.tags[BEST_CHECKPOINT_KEY] == best
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == [CONFIG_FILE]

    (offline_run,) = wandb_run_dirs(run_dir)
    records = wandb_records(offline_run)
    assert len(of_type(records, "run")) == 1
    series = wandb_series(records)
    assert_same_series(series, reference)
    assert len(series["val/acc"]) == EPOCHS
    assert wandb_summary(records)[BEST_CHECKPOINT_KEY] == best
    assert wandb_config(records) == config


# ---- a sweep: its jobs run one after another in one process --------------------------------------


@pytest.mark.slow
def test_each_job_of_a_sweep_gets_runs_of_its_own(tmp_path):
    """Lightning leaves a W&B run open until the process exits: without ``runs_finished`` the second
    job would log into the first job's run."""
    short = ["trainer.limit_train_batches=3", "trainer.limit_val_batches=2", "trainer.limit_test_batches=2"]
    done = run_script(
        "train.py", "-m", "seed=1,2", "logger=[mlflow,wandb]", *QUICK, *short,
        f"paths.log_dir={tmp_path / 'logs'}", env=tracker_env(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = {job.name: job for job in (tmp_path / "logs" / "train" / "multiruns").glob("*/*") if job.is_dir()}
    assert sorted(jobs) == ["0", "1"]

    client = mlflow_client(tmp_path)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert {run.info.run_name: run.data.params["seed"] for run in runs} == {"0": "1", "1": "2"}
    for run in runs:
        assert Path(run.data.tags[BEST_CHECKPOINT_KEY]).parent == jobs[run.info.run_name] / "checkpoints"

    ids = set()
    for name, seed in [("0", 1), ("1", 2)]:
        (offline_run,) = wandb_run_dirs(jobs[name])
        records = wandb_records(offline_run)
        (run,) = of_type(records, "run")
        ids.add(run["run_id"])
        assert wandb_config(records)["seed"] == seed
        assert len(wandb_series(records)["val/acc"]) == EPOCHS
        assert of_type(records, "exit")[0]["exit_code"] == 0
    assert len(ids) == 2


# ---- configs, without training -------------------------------------------------------------------


def test_logger_options_compose_alone_or_as_a_list(tmp_path):
    try:
        for overrides, names in [
            (["logger=mlflow"], ["mlflow"]),
            (["logger=wandb"], ["wandb"]),
            (["logger=[tensorboard,mlflow]"], ["tensorboard", "mlflow"]),
            (["logger=[tensorboard,mlflow,wandb]"], ["tensorboard", "mlflow", "wandb"]),
        ]:
            cfg = make_cfg(tmp_path / "run_7", [*overrides, f"paths.log_dir={tmp_path}"])
            assert list(cfg.logger) == names
        mlflow, wandb = cfg.logger.mlflow, cfg.logger.wandb
        # An absolute log dir gives sqlite's four slashes: sqlite:////abs/path/mlflow.db.
        assert mlflow.tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"
        assert mlflow.tracking_uri.startswith("sqlite:////")
        assert mlflow.artifact_location == f"{tmp_path}/mlflow-artifacts"
        assert mlflow.experiment_name == "train" and mlflow.run_name == "run_7"
        assert wandb.offline is True and wandb.save_dir == str(tmp_path / "run_7") and wandb.name == "run_7"
        relative = make_cfg(tmp_path, ["logger=mlflow"]).logger.mlflow.tracking_uri
        assert relative == "sqlite:///logs/mlflow.db"  # the default log dir, relative to the cwd
    finally:
        GlobalHydra.instance().clear()


def test_tracker_records_join_only_runs_with_a_tracker_and_do_no_per_step_work(tmp_path):
    cfg = make_cfg(tmp_path, ["logger=[tensorboard,csv]"])
    assert trackers_of(build_group(cfg.logger, "logger"), {}, "val/acc") == []
    GlobalHydra.instance().clear()
    hooks = {name for name in vars(TrackerRecords) if name.startswith(("on_", "setup"))}
    assert hooks == {"setup", "on_fit_end"}  # nothing in the training loop's per-batch hooks
