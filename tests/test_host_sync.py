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


def test_training_steps_read_nothing_back_except_on_logged_steps(tmp_path, monkeypatch):
    reads_of: list[SyncCounter] = SyncCounter.made
    for name in READS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            if reads_of:
                reads_of[-1].read(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)

    overrides = ["trainer.max_epochs=2", "trainer.accelerator=cpu", "test=false"]
    train(make_cfg(tmp_path, [*overrides, "+callbacks.sync_counter._target_=test_host_sync.SyncCounter"]))
    counter = SyncCounter.made[-1]

    assert len(counter.steps) == 40 and len(counter.logged) == 4  # 20 steps an epoch, logged every 10th
    unlogged = {step: reads for step, reads in counter.reads.items() if step not in counter.logged}
    assert unlogged == {}, f"host reads on steps that are not logged: {dict(list(unlogged.items())[:3])}"
    # On a logged step: the non-finite guard's check, the bar's train/loss, TensorBoard's conversion.
    assert {step: len(reads) for step, reads in counter.reads.items()} == dict.fromkeys(counter.logged, 3), (
        dict(counter.reads)
    )
