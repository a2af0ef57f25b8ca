"""DDP on two real CPU processes (gloo), launched by Lightning from ``python train.py``.

Spelled as plain trainer overrides (``trainer.devices=2 trainer.strategy=ddp``); the README's test
runs the ``trainer=ddp`` preset form.

One run is shared by all the checks: it is the expensive part. Digits leaves 1,257 training samples
(odd), so the DistributedSampler pads rank 1 with one repeated sample: 629 per rank, which is
5 batches of 157 where 628 would be 4. With accumulation 2 that is ceil(5 / 2) = 3 optimizer steps
per epoch; a plan that ignored the padding would say 2.
"""

import json
from pathlib import Path

import pytest
from conftest import run_script

pytestmark = pytest.mark.slow

TESTS = str(Path(__file__).parent)
COMMON = [
    "trainer.accelerator=cpu",
    "trainer.devices=2",
    "trainer.strategy=ddp",
    "~callbacks.progress_bar",
    "trainer.enable_progress_bar=false",
    "+callbacks.probe._target_=rank_probe.RankProbe",
]


def probes(directory: Path) -> list[dict]:
    return sorted((json.loads(p.read_text()) for p in directory.glob("*.json")), key=lambda r: r["rank"])


def run_train(tmp_path: Path, *overrides: str):
    result = run_script(
        "train.py",
        *COMMON,
        f"paths.log_dir={tmp_path / 'logs'}",
        f"+callbacks.probe.out={tmp_path / 'probes'}",
        *overrides,
        env={"PYTHONPATH": TESTS},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("ddp")
    run_train(
        tmp_path,
        "trainer.max_epochs=2",
        "data.batch_size=157",
        "trainer.accumulate_grad_batches=2",
        # Every epoch after the first counts as "no improvement": the learning rate halves each time.
        "model.scheduler.patience=0",
        "+model.scheduler.threshold=0.99",
    )
    return tmp_path, probes(tmp_path / "probes")


def test_one_training_per_rank_with_the_same_config(ddp_run):
    _, records = ddp_run
    assert [r["rank"] for r in records] == [0, 1]
    assert {r["world_size"] for r in records} == {2}
    assert records[0]["pid"] != records[1]["pid"]
    assert records[0]["config"] == records[1]["config"]


def test_one_run_directory_written_by_rank_zero_only(ddp_run):
    tmp_path, records = ddp_run
    runs = list((tmp_path / "logs").glob("*/*/*"))
    assert len(runs) == 1, runs
    run_dir = runs[0]
    assert {r["output_dir"] for r in records} == {str(run_dir)}
    files = [p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()]
    assert sorted(f for f in files if f.endswith(".log")) == ["config_tree.log", "train.log"]
    assert {f for f in files if f.startswith(".hydra/")} == {
        ".hydra/config.yaml",
        ".hydra/hydra.yaml",
        ".hydra/overrides.yaml",
    }
    assert "checkpoints/last.ckpt" in files
    events = [f for f in files if "tfevents" in f]
    assert events and all(f.split(".")[-2] == str(records[0]["pid"]) for f in events)


def test_training_plan_matches_global_step_with_sampler_padding(ddp_run):
    _, records = ddp_run
    for r in records:
        assert r["global_step"] == r["plan_total_steps"] == 3 * 2


def test_plateau_gets_the_global_epoch_mean_and_learning_rates_agree(ddp_run):
    _, records = ddp_run
    received = [r["plateau_received"] for r in records]
    assert len(received[0]) == 2 and received[0] == received[1]
    # The sample-weighted mean of the objective over both ranks' own (unreduced) totals.
    weights = [r["local_weight"] for r in records]
    for epoch, value in enumerate(received[0]):
        local = [r["local_means"][epoch][0] for r in records]
        assert local[0] != local[1]  # the ranks saw different data, so a local mean would differ
        expected = sum(m * w for m, w in zip(local, weights, strict=True)) / sum(weights)
        assert value == pytest.approx(expected, rel=1e-6)
    lrs = [r["lrs"] for r in records]
    assert lrs[0] == lrs[1]
    assert lrs[0][-1][0] < lrs[0][0][0]  # the scheduler did act
