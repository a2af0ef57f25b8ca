"""No host-device synchronization per training step, except on the steps that are logged.

On a GPU, reading a tensor's value on the host (``.item()``, ``bool(t)``, ``float(t)``, ``.cpu()``,
``.tolist()``) waits for every queued kernel: one such call per step stalls the pipeline every step.
On the CPU nothing waits, but the calls are the same, so this counts them during the training steps
of the default config (everything it promises on: EMA, penalties, epoch means, the rich progress
bar, checkpoints, logging every ``log_every_n_steps``) and allows them on logged steps only. On a lent
GPU, ``scripts/bench/gpu_check.py`` checks the same with ``torch.cuda.set_sync_debug_mode("error")``.
"""

import traceback
from collections import defaultdict

import lightning as L
import torch
from conftest import make_cfg

from litplate.train import train

READS = ("item", "__bool__", "__float__", "__int__", "cpu", "tolist", "numpy")
# torch keeps an optimizer's step counters on the host unless it is capturable or fused, so that
# reading them (for Adam's bias correction) costs no sync: on a GPU these tensors are CPU tensors.
HOST_RESIDENT = ("torch/optim/optimizer.py",)


class SyncCounter(L.Callback):
    """Attributes every host read of a tensor to the training step in progress (None outside steps)."""

    made: list["SyncCounter"] = []

    def __init__(self) -> None:
        SyncCounter.made.append(self)
        self.step: int | None = None
        self.reads: dict[int, list[str]] = defaultdict(list)
        self.logged: set[int] = set()
        self.steps: set[int] = set()

    def on_train_batch_start(self, trainer: L.Trainer, *args) -> None:
        self.step = trainer.global_step
        self.steps.add(self.step)
        if (self.step + 1) % trainer.log_every_n_steps == 0:
            self.logged.add(self.step)

    def on_train_epoch_end(self, *args) -> None:
        self.step = None  # epoch-end work (epoch means, plateau, checkpoints) is once per epoch

    def on_validation_start(self, *args) -> None:
        self.step = None

    def read(self, name: str) -> None:
        if self.step is not None:
            stack = reversed(traceback.extract_stack()[:-2])
            frame = next(f for f in stack if "test_host_sync" not in f.filename)
            where = f"{frame.filename.split('site-packages/')[-1]}:{frame.lineno}"
            if not where.startswith(HOST_RESIDENT):
                self.reads[self.step].append(f"{name} at {where}")


def counted_run(tmp_path, monkeypatch, *overrides: str) -> SyncCounter:
    """A real ``train()`` of the default config (plus ``overrides``), every host read counted."""
    reads_of: list[SyncCounter] = SyncCounter.made
    for name in READS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            if reads_of:
                reads_of[-1].read(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    fixed = ["trainer.max_epochs=2", "trainer.accelerator=cpu", "test=false"]
    counter = "+callbacks.sync_counter._target_=test_host_sync.SyncCounter"
    train(make_cfg(tmp_path, [*fixed, *overrides, counter]))
    return SyncCounter.made[-1]


def unlogged_reads(counter: SyncCounter) -> dict[int, list[str]]:
    return {step: reads for step, reads in counter.reads.items() if step not in counter.logged}


def test_training_steps_read_nothing_back_except_on_logged_steps(tmp_path, monkeypatch):
    counter = counted_run(tmp_path, monkeypatch)
    assert len(counter.steps) == 40 and len(counter.logged) == 4  # 20 steps an epoch, logged every 10th
    assert unlogged_reads(counter) == {}
    # On a logged step: the non-finite guard's check, the bar's train/loss, TensorBoard's conversion.
    assert {step: len(reads) for step, reads in counter.reads.items()} == dict.fromkeys(counter.logged, 3), (
        dict(counter.reads)
    )


def test_with_gradient_accumulation_only_logged_steps_read(tmp_path, monkeypatch):
    # Two batches an optimizer step: the batch after a logged step shares its global step, and
    # reads nothing (the bar read that step's values once, on the batch that took it).
    counter = counted_run(tmp_path, monkeypatch, "trainer.accumulate_grad_batches=2")
    assert len(counter.steps) == 20 and counter.logged == {9, 19}  # 10 optimizer steps an epoch
    assert unlogged_reads(counter) == {}
