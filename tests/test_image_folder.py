"""The image-folder datamodule on small PNG sets written on the fly, with real loader worker processes.

Shapes and classes from the folders; a split that is a function of the seed, saved, and read back
even after files were added; the same batches (order and augmentation) from two runs and from any
number of workers; augmentation on the training split only; bad folders and files as one line
naming them, before training or from inside a worker; real ``train.py`` runs on a folder.
"""

import gc
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from conftest import FAST, assert_same_run, make_cfg, run_script, write_image_folder
from test_resume import _load

from litplate.data import ImageFolderDataModule
from litplate.runtime.errors import ArgumentError, ConfigError, DataFileError
from litplate.train import train

SMALL = {"image_size": 12, "batch_size": 16, "eval_batch_size": 32, "seed": 3, "val_fraction": 0.2}


def datamodule(root: Path, split_file: Path | None = None, **kwargs) -> ImageFolderDataModule:
    args = {**SMALL, "num_workers": 2, **kwargs}
    return ImageFolderDataModule(root=str(root), split_file=split_file and str(split_file), **args)


def batches(loader, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader.sampler.set_epoch(epoch)  # as Lightning does before each training epoch
    return list(loader)


def same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        torch.equal(x, u) and torch.equal(y, v) for (x, y), (u, v) in zip(a, b, strict=True)
    )


def test_shapes_and_classes_come_from_the_data(image_folder):
    dm = datamodule(image_folder, channels=3, image_size=[10, 14])
    assert dm.num_outputs == 3 and dm.classes == ["0", "1", "2"]
    assert dm.input_shape == (3, 10, 14)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 3, 10, 14) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and set(y.tolist()) <= {0, 1, 2}
    # Normalized with the training split's statistics: the unaugmented training images have mean 0 and
    # standard deviation 1 per channel (grey PNGs as RGB: three equal channels).
    dm.train_set.augment = False
    pixels = torch.stack([dm.train_set[i][0] for i in range(len(dm.train_set))]).transpose(0, 1).flatten(1)
    torch.testing.assert_close(pixels.mean(1), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(pixels.std(1, correction=0), torch.ones(3), atol=1e-4, rtol=0)
    assert datamodule(image_folder, channels=1).input_shape == (1, 12, 12)


def test_the_split_is_deterministic_saved_and_read_back_after_files_are_added(tmp_path, image_folder):
    root = shutil.copytree(image_folder, tmp_path / "images")
    first = datamodule(root, tmp_path / "run" / "splits.json", num_workers=0)
    first.setup()
    saved = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert saved["classes"] == ["0", "1", "2"] and saved["seed"] == 3
    all_files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    assert sorted(saved["train"] + saved["val"] + saved["test"]) == all_files
    assert (len(saved["train"]), len(saved["val"]), len(saved["test"])) == (47, 14, 11)
    assert saved["train"] == first.train_set.files

    again = datamodule(root, tmp_path / "other" / "splits.json", num_workers=0)
    again.setup()  # same seed, no file yet: the same split, computed again
    assert json.loads((tmp_path / "other" / "splits.json").read_text()) == saved
    reseeded = datamodule(root, None, num_workers=0, seed=4)
    reseeded.setup()
    assert reseeded.train_set.files != saved["train"]

    shutil.copy(root / "0" / "0_0000.png", root / "0" / "0_new.png")  # new files and a new class
    shutil.copytree(root / "2", root / "3")
    resumed = datamodule(root, tmp_path / "run" / "splits.json", num_workers=0)
    resumed.setup()
    assert resumed.num_outputs == 3
    assert [resumed.train_set.files, resumed.val_set.files, resumed.test_set.files] == [
        saved["train"],
        saved["val"],
        saved["test"],
    ]
    assert datamodule(root, None, num_workers=0).num_outputs == 4  # a fresh split sees the new class


def test_the_same_seed_gives_the_same_batches_with_any_number_of_workers(image_folder):
    """Order and augmentation: two runs with 2 (persistent) workers, and one without workers."""
    runs = []
    for workers in (2, 2, 0):
        dm = datamodule(image_folder, num_workers=workers, persistent_workers=True)
        loader = dm.train_dataloader()
        runs.append([batches(loader, 0), batches(loader, 1)])
    assert same(runs[0][0], runs[1][0]) and same(runs[0][1], runs[1][1])
    assert same(runs[0][0], runs[2][0]) and same(runs[0][1], runs[2][1])
    assert not same(runs[0][0], runs[0][1])  # another epoch: another order and other augmentations


def test_augmentation_is_on_the_training_split_only(image_folder):
    dm = datamodule(image_folder, persistent_workers=True)
    dm.setup()
    train, val = dm.train_set, dm.val_set
    train.augment = False
    plain = [train[i][0] for i in range(len(train))]
    train.augment = True
    epoch0 = [train[(i, 0)][0] for i in range(len(train))]
    epoch1 = [train[(i, 1)][0] for i in range(len(train))]
    changed = [not torch.equal(a, p) for a, p in zip(epoch0, plain, strict=True)]
    assert sum(changed) > len(train) // 2  # a flip or a shift of most images
    assert any(not torch.equal(a, b) for a, b in zip(epoch0, epoch1, strict=True))  # drawn anew each epoch
    assert all(torch.equal(train[(i, 0)][0], epoch0[i]) for i in range(5))  # but the same in every run

    loader = dm.val_dataloader()
    first, second = list(loader), list(loader)
    assert same(first, second)
    assert all(torch.equal(x, val[i][0]) for i, x in enumerate(torch.cat([b[0] for b in first])))
    assert not val.augment and not dm.test_set.augment


def test_no_augmentation_configured_means_train_images_are_plain(image_folder):
    dm = datamodule(image_folder, flip=False, crop_padding=0, num_workers=0)
    dm.setup()
    train = dm.train_set
    assert all(torch.equal(train[(i, 5)][0], train[(i, 0)][0]) for i in range(8))


def test_workers_pin_memory_persistence_and_prefetch_reach_the_loader(image_folder):
    loader = datamodule(image_folder, prefetch_factor=4, persistent_workers=True).train_dataloader()
    assert (loader.num_workers, loader.prefetch_factor, loader.persistent_workers) == (2, 4, True)
    loader = datamodule(image_folder, num_workers=0, prefetch_factor=4, pin_memory=True).val_dataloader()
    assert (loader.num_workers, loader.prefetch_factor, loader.persistent_workers) == (0, None, False)
    assert loader.pin_memory


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channels": 2}, "channels=2 is not allowed: use one of 1, 3"),
        ({"prefetch_factor": 0}, "prefetch_factor=0 is not allowed: use an integer >= 1"),
        ({"image_size": [8, 8, 8]}, "image_size=[8, 8, 8] is not allowed: use one size, or [height, width]"),
        ({"mean": [0.5, 0.5], "std": [1.0, 1.0], "channels": 1}, "mean=[0.5, 0.5] is not allowed"),
        ({"mean": [0.5], "channels": 1}, "std=None is not allowed: use a list as well"),
        ({"std": [0.0], "mean": [0.5], "channels": 1}, "std=[0.0] is not allowed: use null or a list of 1"),
    ],
)
def test_bad_arguments_name_themselves(image_folder, kwargs, message):
    with pytest.raises(ArgumentError) as error:
        datamodule(image_folder, **kwargs)
    assert str(error.value).startswith(message)


def test_a_corrupt_file_found_in_a_worker_is_one_line_naming_it(tmp_path, image_folder):
    """Unverified (``verify: false`` and given statistics: no setup pass), so only a worker meets it."""
    root = shutil.copytree(image_folder, tmp_path / "images")
    broken = root / "1" / "1_0003.png"
    broken.write_bytes(broken.read_bytes()[:60])  # a truncated PNG
    dm = datamodule(root, verify=False, mean=[0.3], std=[0.3], channels=1, batch_size=8)
    with pytest.raises(DataFileError) as error:
        for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
            list(loader)
    line = str(error.value)
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith(f"root: {broken} is not a readable image (")
    assert line.endswith("): replace or delete it")
    # The failed iterator's workers, shut down now: left to a later garbage collection, torch's
    # teardown of them waited about 5 s per worker here (a train.py process exits at once).
    del error
    gc.collect()


# ---- real train.py runs ----------------------------------------------------------------------------

RUN = ["+experiment=image_folder", "trainer.enable_progress_bar=false", "data.image_size=12"]


def bad_folders(base: Path, image_folder: Path) -> dict[str, tuple[list[str], list[str]]]:
    """case -> (overrides, what the error line must contain); each case gets a folder of its own."""
    corrupt = shutil.copytree(image_folder, base / "corrupt")
    (corrupt / "2" / "2_0005.png").write_bytes(b"these bytes are not a PNG")
    empty_class = shutil.copytree(image_folder, base / "empty_class")
    (empty_class / "1b").mkdir()
    (empty_class / "1b" / "notes.txt").write_text("no image here")
    late = shutil.copytree(image_folder, base / "late")
    (late / "0" / "0_0001.png").write_bytes(b"\x89PNG\r\n\x1a\n and then nothing useful")
    return {
        "corrupt_png": (
            [f"data.root={corrupt}"],
            [f"data.root: {corrupt / '2' / '2_0005.png'} is not a readable image", "replace or delete it"],
        ),
        "empty_class_folder": (
            [f"data.root={empty_class}"],
            [f"data.root: class folder {empty_class / '1b'} holds no images (.png .jpg"],
        ),
        "missing_root": (
            [f"data.root={base / 'missing'}"],
            [f"data.root='{base / 'missing'}' is not a folder", "python scripts/make_image_folder.py"],
        ),
        "corrupt_found_in_a_worker": (
            [f"data.root={late}", "data.verify=false", "data.mean=[0.3]", "data.std=[0.3]"],
            [f"data.root: {late / '0' / '0_0001.png'} is not a readable image"],
        ),
    }


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory, image_folder):
    """Every case's real train.py process, started together (each spends seconds importing)."""
    base = tmp_path_factory.mktemp("bad_folders")
    cases = bad_folders(base, image_folder)

    def run(case: str):
        return run_script("train.py", *RUN, *cases[case][0], f"hydra.run.dir={base / 'runs' / case}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(cases, pool.map(run, cases), strict=True))
    return base, cases, results


@pytest.mark.slow
@pytest.mark.parametrize(
    "case", ["corrupt_png", "empty_class_folder", "missing_root", "corrupt_found_in_a_worker"]
)
def test_bad_folders_and_files_are_one_line_errors(bad_runs, case):
    base, cases, results = bad_runs
    result = results[case]
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert lines[-1].startswith("error: "), result.stderr[-2000:]
    assert sum(line.startswith("error:") for line in lines) == 1
    for text in cases[case][1]:
        assert text in lines[-1]
    assert "Traceback" not in result.stdout + result.stderr
    if case != "corrupt_found_in_a_worker":  # found before training: nothing run, nothing left behind
        assert "Training plan" not in result.stdout
        assert not (base / "runs" / case).exists()


def test_a_root_without_class_folders_is_refused_before_training(cfg_factory, tmp_path, image_folder):
    root = tmp_path / "flat"
    root.mkdir()
    shutil.copy(image_folder / "0" / "0_0000.png", root / "loose.png")
    with pytest.raises(ConfigError) as error:
        train(cfg_factory(*RUN, f"data.root={root}"))
    assert str(error.value) == (
        f"data.root: {root} holds no class folders: put each class's images in {root}/<class name>/"
    )
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "splits.json").exists()


@pytest.mark.slow
def test_train_py_trains_on_a_folder_and_a_resume_reads_its_split_back(tmp_path, image_folder):
    root = shutil.copytree(image_folder, tmp_path / "images")
    run_dir = tmp_path / "run"
    args = [*RUN, f"data.root={root}", f"paths.log_dir={tmp_path}", f"hydra.run.dir={run_dir}"]
    done = run_script("train.py", *args, "trainer.max_epochs=1", "test=false")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"split saved to {run_dir / 'splits.json'}" in done.stdout + done.stderr
    split = (run_dir / "splits.json").read_text()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()

    shutil.copytree(root / "2", root / "3")  # a class added before the resume changes nothing
    done = run_script("train.py", *args, "trainer.max_epochs=2", "ckpt_path=last")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"split read from {run_dir / 'splits.json'}" in done.stdout + done.stderr
    assert "3 classes, 50 train, 11 val, 11 test images" in done.stdout + done.stderr
    assert "test/acc" in done.stdout
    assert (run_dir / "splits.json").read_text() == split


@pytest.mark.slow
def test_a_resumed_run_sees_the_same_augmented_batches(tmp_path, image_folder):
    """2 epochs straight equal 1 epoch + resume to 2, bit for bit, with 2 persistent workers: the
    order and every augmentation of the resumed epoch are those of the uninterrupted one."""
    run = [*FAST, *RUN[:1], "data.image_size=12", f"data.root={image_folder}", "~logger", "test=false"]
    run += ["model.net.channels=[8,8]", "model.net.hidden=16", "trainer.enable_model_summary=false"]
    train(make_cfg(tmp_path / "straight", [*run, "trainer.max_epochs=2"]))
    train(make_cfg(tmp_path / "resumed", [*run, "trainer.max_epochs=1"]))
    train(make_cfg(tmp_path / "resumed", [*run, "trainer.max_epochs=2", "ckpt_path=last"]))
    assert_same_run(
        _load(tmp_path / "straight" / "checkpoints" / "last.ckpt"),
        _load(tmp_path / "resumed" / "checkpoints" / "last.ckpt"),
    )


def test_the_mlp_trains_on_a_folder_too(cfg_factory, tmp_path, image_folder):
    cfg = cfg_factory(*RUN[:1], f"data.root={image_folder}", "model/net=mlp", "trainer.max_epochs=1")
    metrics = train(cfg)
    assert 0 <= metrics["test/acc"] <= 1
    weights = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert weights["net.1.weight"].shape[1] == 28 * 28  # the experiment's 28x28 grey images, flattened
    assert (tmp_path / "splits.json").is_file()


def test_write_image_folder_writes_what_it_says(tmp_path):
    root = write_image_folder(tmp_path / "pngs", classes=2, per_class=5, size=9)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))[:2] == [
        "0/0_0000.png",
        "0/0_0001.png",
    ]
    assert len(list(root.rglob("*.png"))) == 10
