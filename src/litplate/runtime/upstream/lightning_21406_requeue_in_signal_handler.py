"""Workaround: Lightning's SLURM requeue handler saves its checkpoint inside the signal handler
(Lightning #21406; fix proposed in PR #21407, open).

Under ``srun`` Lightning picks ``SLURMEnvironment(auto_requeue=True)``, and the requeue signal
(SIGUSR1) runs ``_SignalConnector._slurm_sigusr_handler_fn``: ``trainer.save_checkpoint`` of
``hpc_ckpt_N.ckpt`` and ``scontrol requeue``, inside the Python signal handler, which runs between
any two bytecodes of the main thread. So:

- the checkpoint may hold half a step: taken after the backward pass and before the optimizer
  step, between two parameters' updates, or before the EMA's update of that step;
- under DDP each rank starts the save's collectives (the barrier in ``save_checkpoint``, the
  gather of the epoch means in ``on_save_checkpoint``) wherever its own handler happened to run,
  so they pair with other collectives and the ranks wait for each other for good: two of seven
  two-task runs signalled here hung in the first epochs, the other five wrote ``hpc_ckpt_1.ckpt``;
- training then goes on after the save, until SLURM ends the requeued job.

``without_lightning_requeue(plugins, callbacks)``: under SLURM, when a callback handles the requeue
signal itself (``PreemptionCheckpoint``: it stops every rank at the same step boundary, saves,
requeues and exits), the trainer's plugins plus the environment Lightning would pick anyway, with
``auto_requeue=False``: Lightning then leaves that signal alone. ``tests/test_upstream.py`` shows
that Lightning's handler still saves in the middle of a step; when that test fails, check that
Lightning's save happens at a step boundary, at the same one on every rank, before deleting this
module and its use in ``assembly.build_trainer``.
"""

import signal
from collections.abc import Iterable, Mapping
from typing import Any

from lightning.fabric.plugins.environments import ClusterEnvironment, SLURMEnvironment

from litplate.runtime.components import build


def requeue_signal_handled_by(callbacks: Iterable[Any]) -> signal.Signals | None:
    """The requeue signal a callback handles itself (its ``requeue_signal``), or None."""
    for callback in callbacks:
        name = getattr(callback, "requeue_signal", None)
        if name:
            return signal.Signals[name]
    return None


def without_lightning_requeue(
    plugin_nodes: Iterable[Any] | None, callbacks: Iterable[Any]
) -> list[Any] | None:
    """The Trainer's ``plugins`` with ``SLURMEnvironment(auto_requeue=False)`` added, or None to leave
    them as configured: outside SLURM, when no callback handles the signal, or when the config
    names a cluster environment of its own."""
    handled = requeue_signal_handled_by(callbacks)
    if handled is None or not SLURMEnvironment.detect():
        return None
    plugins = [
        build(node, "trainer.plugins") if isinstance(node, Mapping) else node for node in plugin_nodes or ()
    ]
    if any(isinstance(plugin, ClusterEnvironment) for plugin in plugins):
        return None
    return [*plugins, SLURMEnvironment(auto_requeue=False, requeue_signal=handled)]
